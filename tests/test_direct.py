"""Direct resolvers (app/graphql/direct.py): the per-record fields skip Strawberry's wrapping, answer
as before (arguments, defaults, errors with their codes and paths) and are only installed on fields
where that changes nothing."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import pytest
import strawberry
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig

from app.graphql.direct import install_direct_resolvers
from app.graphql.schema import DIRECT_ROOT_FIELDS, build_schema
from app.graphql.types import DIRECT_RESOLVERS
from tests.conftest import Harness
from tests.gql import RECORD_CREATE
from tests.test_flow import upload_photo


class Colour(enum.Enum):
    RED = "red"


class Never(BasePermission):
    message = "no"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


@strawberry.input(one_of=True)
class Either:
    a: str | None = strawberry.UNSET
    b: str | None = strawberry.UNSET


@strawberry.type
class Sample:
    @strawberry.field
    def by_colour(self, colour: Colour) -> str:
        return colour.value

    @strawberry.field(permission_classes=[Never])
    def guarded(self) -> str:
        return "secret"

    @strawberry.field
    def either(self, value: Either) -> str:
        return "x"

    @strawberry.field
    def plain(self, names: list[str] | None = None) -> str:
        return ",".join(names or [])

    @strawberry.field
    def renamed(self, flag: Annotated[bool, strawberry.argument(name="_flag")] = True) -> str:
        return str(flag)


def test_listed_fields_get_direct_resolvers_and_others_are_refused() -> None:
    schema = build_schema()
    for type_name, field_name in (*DIRECT_ROOT_FIELDS, *DIRECT_RESOLVERS):
        resolve = schema._schema.get_type(type_name).fields[field_name].resolve  # type: ignore[union-attr]
        assert resolve.__module__ == "app.graphql.direct", (type_name, field_name)
    for fields, reason in [
        ([("Record", "id")], "no resolver of its own"),
        ([("Record", "nope")], "not a field"),
        ([("Nope", "x")], "not a field"),
    ]:
        with pytest.raises(ValueError, match=reason):
            install_direct_resolvers(build_schema(), fields)
    sample = strawberry.Schema(query=Sample, config=StrawberryConfig(auto_camel_case=False))
    for field, reason in [("guarded", "permission"), ("either", "builds its own value")]:
        with pytest.raises(ValueError, match=reason):
            install_direct_resolvers(sample, [("Sample", field)])
    install_direct_resolvers(sample, [("Sample", "plain"), ("Sample", "by_colour"), ("Sample", "renamed")])
    assert sample.execute_sync('{ plain(names: ["a", "b"]) }').data == {"plain": "a,b"}
    # Strawberry's enum types coerce to the member already; GraphQL names reach Python parameters.
    assert sample.execute_sync("{ by_colour(colour: RED) }").data == {"by_colour": "red"}
    assert sample.execute_sync("{ renamed(_flag: false) }").data == {"renamed": "False"}


async def test_direct_fields_answer_with_arguments_defaults_and_error_codes(h: Harness) -> None:
    url = await upload_photo(h)
    props = [{"name": "caption", "value": "cat"}, {"name": "image", "value": url}]
    created = (await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": props}))["record_create"]
    query = """query($id: ID!) { record(id: $id) {
      caption: property(name: "caption") image: property(name: "image") properties
      upload: property_upload(name: "image") { url versions version_details { name status } }
      none: property_upload(name: "image", expires_in: 60) { file_name }
    } }"""
    record = (await h.ok(query, {"id": created["id"]}))["record"]
    served = url.replace("/cache/", "/", 1)  # promoted: the permanent key
    assert record["caption"] == "cat" and record["image"] == served == record["properties"]["image"]
    assert record["upload"]["url"] == served and record["upload"]["versions"] == {}
    assert [d["status"] for d in record["upload"]["version_details"]] == ["pending"] * 3
    assert record["none"]["file_name"] == "cat.png"

    async def error(field: str) -> dict[str, Any]:
        body = await h.gql(f"query($id: ID!) {{ record(id: $id) {{ id {field} }} }}", {"id": created["id"]})
        assert body["data"]["record"] is None or body["data"]["record"], body
        (only,) = body["errors"]
        return dict(only)

    wrong = await error('property_upload(name: "caption") { url }')
    assert wrong["extensions"]["code"] == "PROPERTY_TYPE_MISMATCH" and wrong["path"] == ["record", "property_upload"]
    missing = await error('property(name: "nope")')
    assert missing["extensions"]["code"] == "PROPERTY_NOT_FOUND"
    version = await error('property_upload(name: "image") { url(version: "huge") }')
    assert version["extensions"]["code"] == "BAD_USER_INPUT" and "no version named" in version["message"]
    expiry = await error('property_upload(name: "image", expires_in: 0) { url }')
    assert expiry["extensions"]["code"] == "BAD_USER_INPUT"
