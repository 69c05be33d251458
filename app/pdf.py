"""HTML to PDF for `value_upload: {type: pdf, content: "<html>…"}`, as platformOS generates PDFs
(an adapter over WeasyPrint, which needs the system's Pango).

The HTML is a client's, so it renders with nothing from outside: no script runs (WeasyPrint has no
JavaScript), and of all the resources the HTML may name (images, stylesheets, fonts) only `data:`
URLs are read. Every http(s), file or other URL is refused before anything is opened, so the
HTML can reach neither the network nor the server's files. Rendering is CPU work: it runs in a
thread, one document at a time per process, and the HTML is bounded by the request size.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.errors import BadUserInput, PdfRendererUnavailable

log = logging.getLogger(__name__)


class HtmlToPdf:
    def __init__(self) -> None:
        self._one_at_a_time = asyncio.Semaphore(1)

    async def render(self, html: str) -> bytes:
        async with self._one_at_a_time:
            return await asyncio.to_thread(_render, html)


def _render(html: str) -> bytes:
    weasyprint = _weasyprint()
    fetcher = _data_only(weasyprint)
    try:
        pdf = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    except (ValueError, TypeError, AssertionError, RecursionError) as exc:
        # Input WeasyPrint cannot lay out (its parser itself accepts any text, as browsers do).
        raise BadUserInput(f"content could not be rendered as HTML into a PDF: {type(exc).__name__}") from exc
    assert isinstance(pdf, bytes)
    return pdf


def _weasyprint() -> Any:
    try:
        import weasyprint
    except OSError as exc:
        log.error("HTML to PDF is unavailable: WeasyPrint cannot load Pango (%s)", exc)
        raise PdfRendererUnavailable(
            "this server cannot render HTML to PDF now (its Pango library is missing); "
            "send the PDF itself as a data: URI or base64 instead"
        ) from exc
    return weasyprint


def _data_only(weasyprint: Any) -> Any:
    """A URL fetcher that reads `data:` URLs and refuses everything else (WeasyPrint then leaves
    the resource out, as a browser shows a broken image)."""

    class DataOnly(weasyprint.urls.URLFetcher):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("data",), allow_redirects=False, fail_on_errors=False)

    return DataOnly()
