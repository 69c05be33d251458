"""Schemathesis fuzzes every query and mutation of the GraphQL schema; no generated operation may
make the server fail (HTTP 500, an unhandled exception, or an INTERNAL_SERVER_ERROR code).

Schemathesis generates the documents from our SDL (syntactically valid, with random arguments and
selections); they are sent through the real app over ASGI with the moto-backed harness, so the
resolvers, the database and storage all run for real.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import schemathesis
from graphql import NameNode, ObjectFieldNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import graphql
from schemathesis.graphql import nodes

from app.graphql.schema import build_schema
from tests.conftest import Harness
from tests.gql import RECORD_CREATE
from tests.test_flow import upload_photo

EXAMPLES_PER_OPERATION = 125  # 9 operations: well over 1,000 documents in about half a minute

schemathesis.graphql.scalar("BigInt", st.integers(min_value=-(2**70), max_value=2**70).map(nodes.Int))
schemathesis.graphql.scalar("DateTime", st.text(max_size=40).map(nodes.String))
# platformOS's scalars: names that exist and names that do not; dates that parse and text that does
# not; any JSON value, nested.
schemathesis.graphql.scalar(
    "PropertyName",
    st.one_of(st.sampled_from(["id", "caption", "image", "external_id"]), st.text(max_size=20)).map(nodes.String),
)
schemathesis.graphql.scalar(
    "JSONDate",
    st.one_of(st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat), st.text(max_size=40)).map(nodes.String),
)
_JSON_LEAVES = st.one_of(
    st.just(nodes.Null),
    st.booleans().map(nodes.Boolean),
    st.integers(min_value=-(2**40), max_value=2**40).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.text(max_size=20).map(nodes.String),
)
schemathesis.graphql.scalar(
    "JSONPayload",
    st.recursive(
        _JSON_LEAVES,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(nodes.List),
            st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), children, max_size=4).map(
                lambda d: nodes.Object([ObjectFieldNode(name=NameNode(value=k), value=v) for k, v in d.items()])
            ),
        ),
        max_leaves=8,
    ),
)


def generated_documents() -> list[str]:
    schema = graphql.from_file(str(build_schema()))
    documents: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            database=None,
            deadline=None,
            derandomize=True,  # the same documents on every run: a failure here reproduces
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy())
        def collect(case: Any) -> None:
            documents.append(str(case.body))

        collect()
    return documents


async def test_no_generated_operation_breaks_the_server(harness_factory: Any) -> None:
    h: Harness = await harness_factory(PRESIGN_RATE_PER_MINUTE=100_000, MAX_PENDING_UPLOADS=1_000_000)
    # A real record with a real file, so reads and writes by id "1" reach stored data.
    url = await upload_photo(h)
    await h.ok(RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "image", "value": url}]})

    documents = generated_documents()
    assert len(documents) >= 1000
    failures: list[str] = []
    mutations = 0
    for document in documents:
        mutations += document.lstrip().startswith("mutation")
        response = await h.http.post("/graphql", json={"query": document})
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
        if response.status_code >= 500 or "INTERNAL_SERVER_ERROR" in codes or None in codes:
            failures.append(f"{response.status_code} {codes}\n{document}\n{response.text[:500]}")
    assert mutations >= 600, "every mutation must be exercised"
    assert not failures, f"{len(failures)} of {len(documents)} operations failed, first:\n" + "\n".join(failures[:3])
