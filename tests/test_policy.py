"""Client options only narrow; the POST policy signs exactly what the limits say."""

from __future__ import annotations

import pytest

from app.errors import BadUserInput, ContentTypeNotAllowed, Forbidden
from app.policy import ClientOptions, disposition_header, narrow, post_fields_and_conditions
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
    # Any type could be uploaded: possibly active content, so never inline.
    assert narrow(ANY_PRIVATE, ClientOptions(content_disposition="inline")).disposition == "attachment"
    assert narrow(ANY_PRIVATE, ClientOptions(content_disposition="inline", content_type="text/plain")).disposition == (
        "inline"
    )
    assert narrow(
        ANY_PRIVATE, ClientOptions(content_disposition="inline", content_type="image/svg+xml")
    ).disposition == ("attachment")


def test_post_policy_fields_and_conditions() -> None:
    limits = narrow(IMAGES, ClientOptions(content_type="image/png"))
    fields, conditions = post_fields_and_conditions(limits, "cat é.png")
    assert fields["success_action_status"] == "201" and fields["acl"] == "public-read"
    assert fields["Content-Type"] == "image/png"
    assert ["content-length-range", 1024, 10 * 1024 * 1024] in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert {"Content-Disposition": fields["Content-Disposition"]} in conditions
    open_type = narrow(IMAGES, ClientOptions())
    fields, conditions = post_fields_and_conditions(open_type, None)
    assert fields["Content-Type"] == "" and ["starts-with", "$Content-Type", "image/"] in conditions
    with pytest.raises(BadUserInput, match="include_content_type"):
        post_fields_and_conditions(open_type, None, include_content_type=False)


def test_disposition_header() -> None:
    assert disposition_header("inline", None) == "inline"
    assert disposition_header("attachment", "a.pdf") == 'attachment; filename="a.pdf"'
    assert disposition_header("attachment", "Résumé.pdf") == (
        "attachment; filename=\"R_sum_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf"
    )
