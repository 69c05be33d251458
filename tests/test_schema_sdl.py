"""schema.graphql is the exported SDL; it must not drift from the code."""

from pathlib import Path

from app.graphql.schema import build_schema
from app.settings import ROOT


def test_committed_sdl_matches_the_code() -> None:
    committed = (Path(ROOT) / "schema.graphql").read_text()
    assert committed == str(build_schema()) + "\n", "schema.graphql is stale: run `make schema` and commit it"


def test_names_follow_platformos() -> None:
    sdl = str(build_schema())
    for name in (
        "upload_url_payload",
        "attachment_presign_url",
        "image_presign_url",
        "property_upload_presigned_url",
        "record_create",
        "property_upload",
        "version_details",
        "total_entries",
        "scalar HashObject",
        "scalar BigInt",
    ):
        assert name in sdl
    assert "uploadUrl" not in sdl  # snake_case everywhere
