"""Client options only narrow; a grant allows exactly what the limits say (the S3 adapter's signing of
it is in tests/storage/)."""

from __future__ import annotations

import pytest

from app.errors import BadUserInput, ContentTypeNotAllowed, Forbidden
from app.policy import ClientOptions, disposition_header, form_grant, narrow, put_grant, served_disposition
from app.tables import SINGLE_UPLOAD_MAX, UploadOptions

IMAGES = UploadOptions("public", "inline", None, 1024, 10 * 1024 * 1024, ("image/png", "image/jpeg"), ())
ANY_PRIVATE = UploadOptions("private", "attachment", None, 0, None, (), ())


def test_sizes_are_clamped_into_the_property_range() -> None:
    assert narrow(IMAGES, ClientOptions(min_kib=2, max_kib=100)).max_size == 100 * 1024
    widened = narrow(IMAGES, ClientOptions(min_kib=0, max_kib=10**9))
    assert (widened.min_size, widened.max_size) == (1024, 10 * 1024 * 1024)
    assert narrow(ANY_PRIVATE, ClientOptions()).max_size == SINGLE_UPLOAD_MAX
    with pytest.raises(BadUserInput, match="range is empty"):
        narrow(IMAGES, ClientOptions(min_kib=200, max_kib=100))
    with pytest.raises(BadUserInput):
        narrow(IMAGES, ClientOptions(max_kib=-1))


def test_types_only_narrow() -> None:
    pinned = narrow(IMAGES, ClientOptions(content_type="IMAGE/PNG; charset=x"))
    assert (
        pinned.declared_content_type == "image/png" and pinned.allows("image/png") and not pinned.allows("image/jpeg")
    )
    with pytest.raises(ContentTypeNotAllowed):
        narrow(IMAGES, ClientOptions(content_type="image/gif"))
    with pytest.raises(BadUserInput):
        narrow(IMAGES, ClientOptions(content_type="png"))
    prefixed = narrow(IMAGES, ClientOptions(content_type_starts_with="image/j"))
    assert prefixed.content_types == ("image/jpeg",) and prefixed.type_prefix == "image/j"
    with pytest.raises(ContentTypeNotAllowed):
        narrow(IMAGES, ClientOptions(content_type_starts_with="video/"))


def test_acl_and_disposition() -> None:
    with pytest.raises(Forbidden):
        narrow(ANY_PRIVATE, ClientOptions(acl="public"))
    assert narrow(IMAGES, ClientOptions(acl="private", content_type="image/png")).acl == "private"
    with pytest.raises(BadUserInput):
        narrow(ANY_PRIVATE, ClientOptions(content_disposition="evil"))
    # Any type could be uploaded: the promotion serves active content as an attachment, once the
    # verified type is known (test_active_content_is_never_served_inline).
    assert narrow(ANY_PRIVATE, ClientOptions(content_disposition="inline")).disposition == "inline"
    assert narrow(ANY_PRIVATE, ClientOptions(content_disposition="inline", content_type="text/plain")).disposition == (
        "inline"
    )
    assert narrow(
        ANY_PRIVATE, ClientOptions(content_disposition="inline", content_type="image/svg+xml")
    ).disposition == ("attachment")


def test_form_grants() -> None:
    key = "cache/photos/image/" + "ab" * 16 + "/${filename}"
    exact = form_grant(narrow(IMAGES, ClientOptions(content_type="image/png")), key, 900)
    assert (exact.key, exact.expires_in, exact.min_size, exact.max_size) == (key, 900, 1024, 10 * 1024 * 1024)
    assert exact.content_type == "image/png" and not exact.client_sets_content_type
    # A quarantined object is stored as an attachment; promotion gives the permanent one its headers.
    assert exact.content_disposition == "attachment" and exact.cache_control is None
    open_type = form_grant(narrow(IMAGES, ClientOptions()), key, 900)
    assert open_type.content_type is None and open_type.client_sets_content_type
    assert open_type.content_type_prefix == "image/"
    # platformOS's default (include_content_type false): no type at all, taken from the bytes at save.
    untyped = form_grant(narrow(IMAGES, ClientOptions()), key, 900, include_content_type=False)
    assert untyped.content_type is None and not untyped.client_sets_content_type


def test_put_grant() -> None:
    limits = narrow(IMAGES, ClientOptions(content_type="image/png"))
    grant = put_grant(limits, "cache/photos/image/" + "ab" * 16 + "/a.png", 900, 4096, "c2hh")
    assert (grant.size, grant.min_size, grant.max_size) == (4096, 4096, 4096)
    assert (grant.content_type, grant.checksum_sha256) == ("image/png", "c2hh")


def test_active_content_is_never_served_inline() -> None:
    assert served_disposition("inline", "image/png") == "inline"
    assert served_disposition("inline", "image/svg+xml") == "attachment"
    assert served_disposition("inline", "text/html") == "attachment"
    assert served_disposition("attachment", "image/png") == "attachment"


def test_disposition_header() -> None:
    assert disposition_header("inline", None) == "inline"
    assert disposition_header("attachment", "a.pdf") == 'attachment; filename="a.pdf"'
    assert disposition_header("attachment", "Résumé.pdf") == (
        "attachment; filename=\"R_sum_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf"
    )
