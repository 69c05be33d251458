"""The rules under value_upload, without a server: the remote_url allowlist and address checks (and the
fetcher refusing what a resolver answers, whatever the allowlist says), the content encodings, the
Cache-Control narrowing, and HTML rendered into a PDF with nothing fetched."""

from __future__ import annotations

import base64
import io
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from PIL import Image

from app.errors import BadUserInput, Forbidden, RemoteUrlForbidden, UploadTooLarge
from app.pdf import HtmlToPdf
from app.policy import narrow_cache_control
from app.remote_fetch import RemoteFetcher
from app.remote_hosts import address_problem, admitted, origins
from app.settings import Settings, SettingsError
from app.value_upload import Html, ValueUpload, content_of, disposition_of, given_name
from tests import files
from tests.remote_origin import Origin, serving


def allow(raw: str) -> Any:
    return origins(Settings.from_env({"VALUE_UPLOAD_REMOTE_HOSTS": raw}).value_upload_remote_hosts)


# -- the allowlist ---------------------------------------------------------------------------------


def test_allowlist_entries_are_origins_https_by_default() -> None:
    settings = Settings.from_env(
        {"VALUE_UPLOAD_REMOTE_HOSTS": "cdn.example.com, *.Assets.example.org:8443,http://10.0.0.7:8080,[::1]:9000"}
    )
    assert settings.value_upload_remote_hosts == (
        "https://cdn.example.com:443",
        "https://*.assets.example.org:8443",
        "http://10.0.0.7:8080",
        "https://[::1]:9000",
    )
    assert Settings.from_env({}).value_upload_remote_hosts == ()


@pytest.mark.parametrize(
    "raw",
    [
        "cdn.example.com/path",
        "ftp://cdn.example.com",
        "*.com",
        "*.10.0.0.1",
        "user@cdn.example.com",
        "cdn.example.com:99999",
        "exa mple.com",
        "*",
    ],
)
def test_allowlist_entries_that_are_not_origins_stop_the_server(raw: str) -> None:
    with pytest.raises(SettingsError, match="VALUE_UPLOAD_REMOTE_HOSTS"):
        Settings.from_env({"VALUE_UPLOAD_REMOTE_HOSTS": raw})


def test_scheme_host_and_port_must_all_match() -> None:
    allowed = allow("cdn.example.com,*.assets.example.org,http://127.0.0.1:8080")
    assert admitted(allowed, "https", "cdn.example.com", 443).check_addresses
    assert admitted(allowed, "HTTPS", "CDN.example.com.", 443).host == "cdn.example.com"
    assert admitted(allowed, "https", "eu.assets.example.org", 443).check_addresses
    # An IP address the allowlist names as such is reached whatever its range (the operator chose it).
    assert not admitted(allowed, "http", "127.0.0.1", 8080).check_addresses
    for scheme, host, port in [
        ("http", "cdn.example.com", 80),  # https only unless listed with http://
        ("https", "cdn.example.com", 8443),
        ("https", "assets.example.org", 443),  # a wildcard is the subdomains, not the domain
        ("https", "evilassets.example.org", 443),
        ("https", "cdn.example.com.evil.net", 443),
        ("https", "127.0.0.1", 8080),
        ("http", "127.0.0.2", 8080),
        ("http", "localhost", 8080),
    ]:
        with pytest.raises(RemoteUrlForbidden):
            admitted(allowed, scheme, host, port)
    with pytest.raises(RemoteUrlForbidden, match="switched off"):
        admitted((), "https", "cdn.example.com", 443)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),  # AWS, GCP and Azure metadata
        ("fd00:ec2::254", "private"),  # AWS metadata over IPv6
        ("100.100.100.200", "not public"),  # Alibaba metadata, in the shared 100.64/10
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("fe80::1%eth0", "link-local"),
    ],
)
def test_non_public_addresses_are_refused(address: str, problem: str) -> None:
    found = address_problem(address)
    assert found is not None and found.startswith(problem)


def test_public_addresses_pass() -> None:
    assert address_problem("93.184.216.34") is None
    assert address_problem("2606:2800:220:1:248:1893:25c8:1946") is None


class FakeDns(AbstractResolver):
    """DNS as an attacker or a careless zone would answer it (the outside world, not our code)."""

    answers = {
        "metadata.example.com": "169.254.169.254",
        "internal.example.com": "10.0.0.5",
        "v6.example.com": "fd00:ec2::254",
        "mixed.example.com": "127.0.0.1",
    }

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers[host]
        kind = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [ResolveResult(hostname=host, host=address, port=port, family=kind, proto=0, flags=0)]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("host", list(FakeDns.answers))
async def test_an_allowlisted_name_resolving_to_a_private_or_metadata_address_is_refused(host: str) -> None:
    fetcher = RemoteFetcher(allow(f"http://{host}"), timeout=5, max_bytes=1 << 20, resolver=FakeDns)
    with pytest.raises(RemoteUrlForbidden, match="resolves to a"):
        await fetcher.fetch(f"http://{host}/latest/meta-data/", 1 << 20)


async def test_a_fetch_reads_what_the_allowlist_names_and_stops_at_the_limit() -> None:
    async with serving(Origin()) as origin:
        origin.files["a.txt"] = (b"hello", "text/plain")
        fetcher = RemoteFetcher(allow(origin.base), timeout=5, max_bytes=1 << 20)
        fetched = await fetcher.fetch(origin.url("/files/a.txt#part"), 100)
        assert (fetched.data, fetched.file_name) == (b"hello", "a.txt")
        with pytest.raises(UploadTooLarge, match="larger than 4 bytes"):
            await fetcher.fetch(origin.url("/files/a.txt"), 4)


# -- content ---------------------------------------------------------------------------------------


def test_content_encodings_by_type() -> None:
    png = files.png()
    b64 = base64.b64encode(png).decode()
    for given in (
        b64,
        f"data:image/png;base64,{b64}",
        "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)),
        base64.urlsafe_b64encode(png).decode().rstrip("="),
        f"DATA:image/jpeg;name=a.png;BASE64,{b64}",
    ):
        assert content_of(ValueUpload("image", content=given)) == png
    assert content_of(ValueUpload("image", content="data:image/svg+xml,%3Csvg%3E%3C/svg%3E")) == b"<svg></svg>"
    assert content_of(ValueUpload("plain", content="Zoë,1\n")) == "Zoë,1\n".encode()
    assert content_of(ValueUpload("plain", content=b64)) == b64.encode()  # plain is never decoded
    pdf = files.pdf()
    assert content_of(ValueUpload("pdf", content=base64.b64encode(pdf).decode())) == pdf
    assert (
        content_of(ValueUpload("pdf", content="data:application/pdf;base64," + base64.b64encode(pdf).decode())) == pdf
    )
    assert content_of(ValueUpload("pdf", content="<h1>Hi</h1>")) == Html("<h1>Hi</h1>")
    assert content_of(ValueUpload("pdf", content="Just words")) == Html("Just words")
    for bad in ("!!!", "data:image/png;base64", "data:,", "    "):
        with pytest.raises(BadUserInput):
            content_of(ValueUpload("image", content=bad))
    with pytest.raises(BadUserInput, match="Unicode"):
        content_of(ValueUpload("plain", content="\ud800"))


def test_names_come_from_file_path_then_the_disposition_then_the_source() -> None:
    spec = ValueUpload("plain", content="a", content_disposition='attachment; filename="Q1 report.csv"')
    assert disposition_of(spec) == ("attachment", "Q1 report.csv")
    assert disposition_of(ValueUpload("plain", content_disposition="INLINE")) == ("inline", None)
    assert disposition_of(ValueUpload("plain", content_disposition="attachment; filename*=UTF-8''na%C3%AFve.txt")) == (
        "attachment",
        "naïve.txt",
    )
    assert given_name(ValueUpload("plain", file_path="../../etc/passwd"), "x.csv", "y.txt") == "passwd"
    assert given_name(ValueUpload("plain"), "x.csv", "y.txt") == "x.csv"
    assert given_name(ValueUpload("plain"), None, "y.txt") == "y.txt"
    assert given_name(ValueUpload("plain"), None, None) is None
    for bad in ("form-data", "attachment\x00"):
        with pytest.raises(BadUserInput):
            disposition_of(ValueUpload("plain", content_disposition=bad))


# -- Cache-Control -----------------------------------------------------------------------------------


def test_cache_control_may_only_narrow() -> None:
    own = "max-age=315576000, public"
    assert narrow_cache_control(own, None) == own
    assert narrow_cache_control(own, "max-age=60") == "max-age=60"
    assert narrow_cache_control(own, "private, no-cache") == "private, no-cache"
    assert (
        narrow_cache_control(own, "public, max-age=315576000, s-maxage=600")
        == "public, max-age=315576000, s-maxage=600"
    )
    assert narrow_cache_control(None, "no-store") == "no-store"
    # The property's restrictive directives stay whatever the client sends.
    assert narrow_cache_control("max-age=600, must-revalidate", "max-age=60") == "max-age=60, must-revalidate"
    for wider in ("max-age=315576001", "immutable", "stale-while-revalidate=60"):
        with pytest.raises(Forbidden):
            narrow_cache_control(own, wider)
    for wider in ("max-age=1", "public"):
        with pytest.raises(Forbidden):
            narrow_cache_control(None, wider)
    with pytest.raises(BadUserInput):
        narrow_cache_control(own, "max-age=1; drop table")


# -- HTML to PDF ---------------------------------------------------------------------------------------


def _has_image(pdf: bytes) -> bool:
    return b"/Subtype /Image" in pdf or b"/Subtype/Image" in pdf


async def test_html_becomes_a_pdf_with_nothing_fetched_but_data_urls(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.new("RGB", (40, 40), "red").save(png, "PNG")
    on_disk = tmp_path / "secret.png"
    on_disk.write_bytes(png.getvalue())
    inline = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    renderer = HtmlToPdf()
    async with serving(Origin()) as origin:
        origin.files["x.png"] = (png.getvalue(), "image/png")
        origin.files["s.css"] = (b"body { color: red }", "text/css")
        outside = await renderer.render(
            f'<html><head><link rel="stylesheet" href="{origin.url("/files/s.css")}">'
            f"<style>@import url({origin.url('/files/s.css')}); @page {{ size: landscape }}</style></head>"
            f'<body><h1>Invoice</h1><img src="{origin.url("/files/x.png")}"><img src="file://{on_disk}">'
            f'<iframe src="file:///etc/passwd"></iframe><object data="file://{on_disk}"></object></body></html>'
        )
        assert origin.requests == []  # nothing reached the network
    assert outside.startswith(b"%PDF-") and not _has_image(outside)  # nor the disk
    with_data = await renderer.render(f'<p>logo</p><img src="{inline}">')
    assert _has_image(with_data)


async def test_html_that_would_cost_too_much_is_refused() -> None:
    big_image = io.BytesIO()
    Image.new("1", (5000, 4000)).save(big_image, "PNG")  # 20 megapixels in a few kilobytes
    inline = "data:image/png;base64," + base64.b64encode(big_image.getvalue()).decode()
    with pytest.raises(BadUserInput, match="5000x4000 pixels"):
        await HtmlToPdf().render(f'<img src="{inline}">')
    # Layout that outlasts the time limit: the renderer is stopped.
    pages = "<p>" + "Lorem ipsum dolor sit amet. " * 20 + "</p>"
    with pytest.raises(BadUserInput, match="longer than 1 s"):
        await HtmlToPdf(timeout=1).render(pages * 4000)
