"""HTML to PDF for `value_upload: {type: pdf, content: "<html>…"}`, as platformOS generates PDFs
(an adapter over WeasyPrint, which needs the system's Pango).

The HTML is a client's, so it renders with nothing from outside and inside bounds:
- no script runs (WeasyPrint has no JavaScript), and of all the resources the HTML may name (images,
  stylesheets, fonts) only `data:` URLs are read; every http(s), file or other URL is refused before
  anything is opened, so the HTML reaches neither the network nor the server's files;
- an image in the HTML may hold at most `MAX_IMAGE_PIXELS` (read from its header, before decoding),
  the images of one document `MAX_TOTAL_PIXELS` together, so a small data: URL cannot make a huge bitmap;
- each document renders in a child process (`python -m app.pdf`, HTML on stdin, PDF on stdout) that
  is killed when it runs longer than the time limit: layout is CPU work that cannot be interrupted
  otherwise, and it never holds up the API's event loop. Documents render one at a time per process.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from typing import Any

from app.errors import BadUserInput, PdfRendererUnavailable
from app.settings import ROOT

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 16_000_000
MAX_TOTAL_PIXELS = 32_000_000
# Exit codes of the child besides 0 (the PDF is on stdout): its reason is on stderr.
REFUSED, UNAVAILABLE = 2, 3


class HtmlToPdf:
    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._one_at_a_time = asyncio.Semaphore(1)

    async def render(self, html: str) -> bytes:
        async with self._one_at_a_time:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.pdf",
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                pdf, reason = await asyncio.wait_for(
                    child.communicate(html.encode("utf-8", "surrogatepass")), self.timeout
                )
            except TimeoutError:
                raise BadUserInput(
                    f"the HTML took longer than {self.timeout:g} s to render into a PDF; send a smaller document"
                ) from None
            finally:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
        message = reason.decode(errors="replace").strip()[-500:]
        if child.returncode == 0 and pdf.startswith(b"%PDF-"):
            return pdf
        if child.returncode == REFUSED:
            raise BadUserInput(message)
        if child.returncode == UNAVAILABLE:
            log.error("HTML to PDF is unavailable: %s", message)
            raise PdfRendererUnavailable(
                "this server cannot render HTML to PDF now (its Pango library is missing); "
                "send the PDF itself as a data: URI or base64 instead"
            )
        log.error("the PDF renderer failed (exit %s): %s", child.returncode, message)
        raise BadUserInput("the HTML could not be rendered into a PDF within the server's limits")


# -- the child process ---------------------------------------------------------------------------------


class _Refused(Exception):
    """The HTML cannot be rendered; the message is for the client."""


def _render(html: str) -> bytes:
    try:
        import weasyprint
    except OSError as exc:
        raise ImportError(str(exc)) from exc
    fetcher = _data_only(weasyprint)
    try:
        pdf = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    except weasyprint.urls.FatalURLFetchingError as exc:
        raise _Refused(str(exc.__cause__ or exc)) from exc
    except (ValueError, TypeError, AssertionError, RecursionError) as exc:
        # Input WeasyPrint cannot lay out (its parser itself accepts any text, as browsers do).
        raise _Refused(f"content could not be rendered as HTML into a PDF: {type(exc).__name__}") from exc
    assert isinstance(pdf, bytes)
    return pdf


def _data_only(weasyprint: Any) -> Any:
    """A URL fetcher that reads `data:` URLs and refuses everything else (WeasyPrint then leaves the
    resource out, as a browser shows a broken image); an image over the pixel limits stops the render."""
    from PIL import Image

    class DataOnly(weasyprint.urls.URLFetcher):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("data",), allow_redirects=False, fail_on_errors=False)
            self.pixels = 0

        def fetch(self, url: str, headers: Any = None) -> Any:
            response = super().fetch(url, headers)
            body = response.read()
            try:
                with Image.open(io.BytesIO(body)) as image:  # the header only: nothing is decoded
                    width, height = image.size
            except Image.DecompressionBombError:
                width = height = MAX_TOTAL_PIXELS + 1
            except Exception:  # noqa: BLE001 - not a raster image (CSS, a font, SVG): nothing to count
                width = height = 0
            self.pixels += width * height
            if width * height > MAX_IMAGE_PIXELS or self.pixels > MAX_TOTAL_PIXELS:
                raise weasyprint.urls.FatalURLFetchingError(
                    f"an image in the HTML is {width}x{height} pixels; images may hold {MAX_IMAGE_PIXELS} "
                    f"pixels each and {MAX_TOTAL_PIXELS} together"
                )
            return weasyprint.urls.URLFetcherResponse(response.url, body, response.headers, response.status)

    return DataOnly()


def main() -> int:
    html = sys.stdin.buffer.read().decode("utf-8", "replace")
    try:
        pdf = _render(html)
    except ImportError as exc:
        print(f"WeasyPrint cannot load: {exc}", file=sys.stderr)
        return UNAVAILABLE
    except _Refused as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    sys.stdout.buffer.write(pdf)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    sys.exit(main())
