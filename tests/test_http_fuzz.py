"""A raw-HTTP fuzz run against the real server: `python -m app.run` (uvicorn with httptools over a
socket, embedded storage, JWT auth on), sent over plain sockets so that nothing in between tidies the
requests up. Beside tests/test_fuzz.py (schemathesis: well-formed operations over the whole schema),
this sends malformed requests of every kind: bodies (wrong JSON types, bytes that are not UTF-8,
deep nesting, huge numbers, duplicate keys, mangled valid operations), headers, methods, encodings,
paths, content types, and chunked, truncated and abandoned bodies.

What must hold for all of them: no 5xx; every answer of the app is JSON with a code in the shape of
its route; an app answer to a well-framed request keeps the connection open; the log holds exactly
one line per request the app saw (its access line) and no traceback or error. Requests that are
not HTTP at all are refused by uvicorn's parser (400, connection closed) before the app sees them.

The requests come from a fixed seed, so a failure reproduces: the failing request is printed.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest

from tests.gql import ATTACHMENT_PRESIGN, IMAGE_PRESIGN, RECORD_CREATE, RECORD_UPDATE, RECORDS
from tests.live import LiveServer, start_live_server, stop_live_server

SEED = 14
REQUESTS = 10_000
CONNECTIONS = 8
SECRET = "fuzz-" + "s" * 40
TIMEOUT = 10.0  # seconds for one answer: a hang is a failure too

Kind = str  # "keep": well framed, on a kept connection; "fresh": its own connection; "abandon": no answer


@dataclass
class Req:
    raw: bytes
    kind: Kind = "keep"
    request_id: str | None = None  # set when the app must log exactly one line with this id
    method: str = "POST"
    what: str = ""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    app_ids: list[str] = field(default_factory=list)
    reconnects: int = 0


# -- building requests -----------------------------------------------------------------------------
def tokens() -> list[str]:
    exp = int(time.time()) + 3600
    return [jwt.encode({"sub": f"fuzz-{i}", "exp": exp}, SECRET, algorithm="HS256") for i in range(5)]


OPERATIONS = [
    ("{ tables { name properties { name type options } } }", {}),
    (IMAGE_PRESIGN, {"table": "photos", "prop": "image", "type": "image/png", "name": "a.png"}),
    (ATTACHMENT_PRESIGN, {"table": "documents", "prop": "resume", "type": "application/pdf"}),
    (RECORDS, {"table": "photos", "prop": "image"}),
    (RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "caption", "value": "x"}]}),
    (RECORD_UPDATE, {"id": "1", "prop": "image", "props": [{"name": "caption", "value": "y"}]}),
]

JUNK_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**31,
    2**63,
    -(2**70),
    1.5,
    1e308,
    "",
    " ",
    "\x00",
    "photos",
    "../../etc/passwd",
    "é" * 300,
    "\U0001f600",
    "x" * 5000,
    [],
    [None],
    {},
    {"gte": "x"},
    {"__proto__": 1},
]


def junk(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return [junk(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and roll < 0.3:
        return {rng.choice(["a", "table", "value", "gte", "name"]): junk(rng, depth + 1) for _ in range(2)}
    return rng.choice(JUNK_VALUES)


def nested(rng: random.Random) -> bytes:
    depth = rng.choice([65, 100, 999, 1000, 2000, 30_000, 200_000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    return opener * depth + b"1" + closer * depth


def mangle(rng: random.Random, data: bytes) -> bytes:
    """A valid body, broken: a byte flipped, cut short, something inserted or doubled."""
    if not data:
        return b"\xff"
    i = rng.randrange(len(data))
    how = rng.randrange(6)
    if how == 0:
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    if how == 1:
        return data[:i]
    if how == 2:
        return data[:i] + rng.choice([b"\x00", b"\xc3", b"\xed\xa0\x80", b"\\", b'"', b"{", b"]", b"\\u12"]) + data[i:]
    if how == 3:
        return data + data
    if how == 4:
        return data.replace(b'"', b"'")
    return data[i:] + data[:i]


def graphql_body(rng: random.Random) -> bytes:
    query, variables = rng.choice(OPERATIONS)
    roll = rng.randrange(20)
    if roll == 0:
        return rng.choice([b"5", b'"x"', b"null", b"true", b"[]", b"[{}]", b"{}", b"", b" ", b"\n"])
    if roll == 1:
        return b'{"query": ' + json.dumps(query).encode() + b', "variables": {"a": ' + nested(rng) + b"}}"
    if roll == 2:
        number = rng.choice([b"9" * 5000, b"1e400", b"-1e400", b"NaN", b"Infinity", b"1" * 4301, b"0." + b"0" * 5000])
        return b'{"query": ' + json.dumps(query).encode() + b', "variables": {"table": ' + number + b"}}"
    if roll == 3:
        return b'{"query": "{ tables { name } }", "query": ' + json.dumps(query).encode() + b"}"
    if roll == 4:
        return rng.randbytes(rng.randrange(1, 300))
    if roll == 5:
        return json.dumps({"query": query, "variables": variables}).encode(rng.choice(["utf-16", "utf-32", "latin-1"]))
    if roll == 6:
        key = rng.choice(["query", "variables", "operationName", "extensions"])
        body: dict[str, Any] = {"query": query, "variables": variables}
        body[key] = junk(rng)
        return json.dumps(body).encode()
    if roll == 7:
        return b'{"query": "{ tables { name } } #\\ud800"}'
    if roll == 8:
        return json.dumps([{"query": query}] * rng.randint(1, 5)).encode()
    if roll == 9:
        text = rng.choice(
            [
                "{",
                "{ tables {",
                "mutation {",
                "query($a: [[[Int]]]) { x }",
                "{ " * 500,
                "fragment A on Query { ...A } { ...A }",
            ]
        )
        return json.dumps({"query": text}).encode()
    if roll in (10, 11, 12):
        wrong = {name: junk(rng) for name in variables}
        return json.dumps({"query": query, "variables": wrong}).encode()
    return mangle(rng, json.dumps({"query": query, "variables": variables, "operationName": None}).encode())


def rest_body(rng: random.Random) -> bytes:
    good: dict[str, Any] = {
        "table": "documents",
        "property_name": "resume",
        "file_name": "cv.pdf",
        "content_type": "application/pdf",
        "size": 2048,
        "key": "documents/resume/" + "0" * 32 + "/cv.pdf",
        "properties": {"title": "x"},
    }
    roll = rng.randrange(8)
    if roll == 0:
        return b'{"table": ' + nested(rng) + b"}"
    if roll == 1:
        return rng.choice([b"5", b"null", b"[]", b'"x"', b"", b"\xff\xfe", b'{"a":1,"a":2}', b'{"size": NaN}'])
    if roll in (2, 3):
        key = rng.choice(list(good))
        return json.dumps({**good, key: junk(rng)}).encode()
    if roll == 4:
        return json.dumps(good).encode("utf-16")
    return mangle(rng, json.dumps(good).encode())


def request(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    length: bool = True,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1"), b"Host: 127.0.0.1"]
    for name, value in headers:
        name_b = name if isinstance(name, bytes) else name.encode("latin-1")
        value_b = value if isinstance(value, bytes) else value.encode("latin-1")
        lines.append(name_b + b": " + value_b)
    if length:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(body: bytes, rng: random.Random) -> bytes:
    out, i = b"", 0
    while i < len(body):
        piece = body[i : i + rng.randint(1, 64)]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        i += len(piece)
    return out + b"0\r\n\r\n"


def build(rng: random.Random, n: int) -> Iterator[Req]:
    good_tokens = tokens()
    content_types = [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json; charset=latin-1",
        "application/jsonx",
        "application/graphql",
        "text/plain",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "",
        ";;;",
        'application/json; charset="utf-8',
        "application/json; charset=utf-16",
        "*/*",
    ]
    for i in range(n):
        rid = f"fuzz-{i}"
        headers: list[Any] = [("X-Request-ID", rid)]
        auth = rng.randrange(10)
        if auth < 5:
            headers.append(("Authorization", "Bearer " + rng.choice(good_tokens)))
        elif auth == 5:
            headers.append(("Authorization", rng.choice(["Bearer", "Basic dXNlcjpwYXNz", "Bearer x.y.z", "bearer  "])))
        elif auth == 6:
            headers.append(("Authorization", "Bearer " + "a" * rng.choice([100, 9000])))
        elif auth == 7:  # not ASCII, but bytes HTTP allows in a header value (obs-text)
            headers.append((b"Authorization", b"Bearer \xff\xfe" + bytes(rng.randrange(0x80, 0x100) for _ in range(8))))
        kind = rng.randrange(100)
        if kind < 45:
            body = graphql_body(rng)
            ctype = "application/json" if rng.random() < 0.75 else rng.choice(content_types)
            if ctype:
                headers.append(("Content-Type", ctype))
            if rng.random() < 0.05:
                headers += [("Content-Encoding", "gzip")]
                body = gzip.compress(body)
            if rng.random() < 0.1:
                headers.append(("Transfer-Encoding", "chunked"))
                yield Req(
                    request("POST", "/graphql", headers, chunked(body, rng), length=False),
                    request_id=rid,
                    what="chunked graphql",
                )
            else:
                yield Req(request("POST", "/graphql", headers, body), request_id=rid, what="graphql body")
        elif kind < 60:
            query, variables = rng.choice(OPERATIONS)
            params = {"query": query}
            roll = rng.randrange(5)
            if roll == 0:
                params["variables"] = '{"a": ' + nested(rng).decode()[:30_000] + "}"
            elif roll == 1:
                params["variables"] = rng.choice(["5", "null", "[1]", "{a:1}", "%%%", json.dumps(variables), "\ud800"])
            elif roll == 2:
                params["extensions"] = rng.choice(["5", "[]", "{", '{"persistedQuery": 1}'])
            elif roll == 3:
                params["operationName"] = rng.choice(["", "X", "0", "{}"])
            target = "/graphql?" + "&".join(
                f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in params.items()
            )
            if rng.random() < 0.1:
                target += rng.choice(["&query=%7B%7D", "&variables=%ZZ", "&%C0%AE=1", "&query=%ff"])
            headers.append(
                (
                    "Accept",
                    rng.choice(["application/json", "*/*", "text/html", "", "application/graphql-response+json"]),
                )
            )
            yield Req(request("GET", target, headers, length=False), method="GET", request_id=rid, what="graphql get")
        elif kind < 80:
            path = rng.choice(["/upload/init", "/upload/confirm"])
            body = rest_body(rng)
            headers.append(("Content-Type", "application/json" if rng.random() < 0.8 else rng.choice(content_types)))
            yield Req(request("POST", path, headers, body), request_id=rid, what=f"rest {path}")
        elif kind < 90:
            method = rng.choice(["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "POST"])
            path = rng.choice(
                [
                    "/graphql",
                    "/graphql/",
                    "//graphql",
                    "/GRAPHQL",
                    "/upload/init",
                    "/upload/init/../confirm",
                    "/static/../../etc/passwd",
                    "/static/%2e%2e/%2e%2e/etc/passwd",
                    "/static/graphiql/",
                    "/%00",
                    "/%ff%fe",
                    "/" + "a" * 4000,
                    "/healthz",
                    "/readyz?x=%ZZ",
                    "/metrics",
                    "/",
                    "/favicon.ico",
                ]
            )
            body = graphql_body(rng) if method not in ("GET", "HEAD") else b""
            headers.append(("Content-Type", "application/json"))
            yield Req(request(method, path, headers, body), method=method, request_id=rid, what=f"{method} {path[:40]}")
        else:
            yield from protocol_abuse(rng, headers, rid)


def protocol_abuse(rng: random.Random, headers: list[Any], rid: str) -> Iterator[Req]:
    """Requests whose framing is broken or abandoned: each on a connection of its own."""
    body = json.dumps({"query": "{ tables { name } }"}).encode()
    json_ct = [*headers, ("Content-Type", "application/json")]
    roll = rng.randrange(10)
    if roll == 0:  # the client gives up half way through the body
        raw = request("POST", rng.choice(["/graphql", "/upload/init"]), json_ct, body)
        yield Req(raw[: rng.randrange(len(raw) - len(body), len(raw) - 1)], kind="abandon", what="truncated body")
    elif roll == 1:  # a chunked body that stops early
        raw = request("POST", "/graphql", [*json_ct, ("Transfer-Encoding", "chunked")], b"", length=False)
        yield Req(raw + chunked(body, rng)[: rng.randrange(1, 20)], kind="abandon", what="truncated chunks")
    elif roll == 2:  # chunk sizes that are not hex, or lie
        bad = rng.choice(
            [b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nabc\r\n0\r\n\r\n", b"-1\r\nx\r\n0\r\n\r\n", b"ffffffffffffffffff\r\n"]
        )
        raw = request("POST", "/graphql", [*json_ct, ("Transfer-Encoding", "chunked")], bad, length=False)
        yield Req(raw, kind="fresh", what="bad chunks")
    elif roll == 3:  # Content-Length that is no number, negative, twice, or beside chunked
        length = rng.choice(["abc", "-1", "1e3", " 12", "18446744073709551617"])
        raw = request("POST", "/graphql", [*json_ct, ("Content-Length", length)], body, length=False)
        yield Req(raw, kind="fresh", what=f"content-length {length!r}")
    elif roll == 4:
        raw = request("POST", "/graphql", [*json_ct, ("Transfer-Encoding", "chunked")], chunked(body, rng))
        yield Req(raw, kind="fresh", what="content-length and chunked")
    elif roll == 5:  # request lines that are not HTTP/1.1
        line = rng.choice(
            [
                b"GET /graphql HTTP/2.0",
                b"GET /graphql",
                b"GET  HTTP/1.1",
                b"\x16\x03\x01\x02\x00",
                b"G\x00T / HTTP/1.1",
                b"GET /graphql HTTP/1.1 extra",
            ]
        )
        yield Req(line + b"\r\nHost: x\r\n\r\n", kind="fresh", what=f"request line {line[:20]!r}")
    elif roll == 6:  # header names and values HTTP does not allow
        bad = rng.choice([b"Bad Header: x", b"X-A:\x00b", b": empty", b"X-Long: " + b"a" * 70_000, b"X-Fold: a\r\n b"])
        yield Req(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + bad + b"\r\n\r\n", kind="fresh", what=f"header {bad[:20]!r}"
        )
    elif roll == 7:  # a body bigger than MAX_BODY_BYTES, declared or chunked
        big = b'{"query": "{ tables { name } }", "variables": {"pad": "' + b"x" * 1_100_000 + b'"}}'
        if rng.random() < 0.5:
            yield Req(request("POST", "/graphql", json_ct, big), request_id=rid, what="1 MiB body")
        else:
            raw = request("POST", "/graphql", [*json_ct, ("Transfer-Encoding", "chunked")], b"", length=False)
            yield Req(raw + f"{len(big):x}\r\n".encode() + big + b"\r\n0\r\n\r\n", request_id=rid, what="1 MiB chunked")
    elif roll == 8:  # Expect: 100-continue, answered before the body is read
        raw = request("POST", "/upload/init", [*json_ct, ("Expect", "100-continue")], body)
        yield Req(raw, request_id=rid, what="expect 100-continue")
    else:  # nothing but garbage
        yield Req(rng.randbytes(rng.randrange(1, 200)) + b"\r\n\r\n", kind="fresh", what="garbage")


# -- sending them ----------------------------------------------------------------------------------
async def read_answer(reader: asyncio.StreamReader, method: str) -> Answer:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if status >= 200:
            break  # skip interim answers (100 Continue)
    if method == "HEAD" or status in (204, 304):
        return Answer(status, headers, b"")
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                return Answer(status, headers, body)
    if "content-length" in headers:
        return Answer(status, headers, await reader.readexactly(int(headers["content-length"])))
    return Answer(status, headers, await reader.read())


def check(req: Req, answer: Answer, outcome: Outcome) -> None:
    outcome.statuses[answer.status] = outcome.statuses.get(answer.status, 0) + 1
    where = f"{req.what}: {req.raw[:300]!r}"
    if answer.status >= 500:
        outcome.failures.append(f"{answer.status} for {where}\n{answer.body[:300]!r}")
        return
    from_app = "x-request-id" in answer.headers
    if not from_app:
        return  # uvicorn's parser refused it before the app saw it
    if req.request_id is not None:
        outcome.app_ids.append(req.request_id)
    if answer.status >= 400 and req.method != "HEAD":
        try:
            body = json.loads(answer.body)
        except ValueError:
            outcome.failures.append(f"{answer.status} without a JSON body for {where}: {answer.body[:200]!r}")
            return
        codes = (
            [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
            if "errors" in body
            else [body.get("error", {}).get("code")]
        )
        if not codes or None in codes:
            outcome.failures.append(f"{answer.status} without a code for {where}: {body}")
    if req.kind == "keep" and answer.headers.get("connection", "").lower() == "close":
        outcome.failures.append(f"the app closed the connection after {answer.status} for {where}")


async def send_all(port: int, requests: list[Req]) -> Outcome:
    outcome = Outcome()
    queue = list(reversed(requests))

    async def worker() -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while queue:
            req = queue.pop()
            try:
                if req.kind != "keep":
                    await one_off(port, req, outcome)
                    continue
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                reader, writer = conn
                writer.write(req.raw)
                await writer.drain()
                answer = await asyncio.wait_for(read_answer(reader, req.method), TIMEOUT)
                check(req, answer, outcome)
                if answer.headers.get("connection", "").lower() == "close" or reader.at_eof():
                    if "x-request-id" in answer.headers and reader.at_eof():
                        outcome.failures.append(f"the connection closed after the app's {answer.status} for {req.what}")
                    writer.close()
                    conn = None
                    outcome.reconnects += 1
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
                outcome.failures.append(f"{type(exc).__name__} for {req.what}: {req.raw[:300]!r}")
                if conn is not None:
                    conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return outcome


async def one_off(port: int, req: Req, outcome: Outcome) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(req.raw)
        await writer.drain()
        if req.kind == "abandon":
            return  # closed below, mid-request
        writer.write_eof()
        try:
            answer = await asyncio.wait_for(read_answer(reader, req.method), TIMEOUT)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                outcome.failures.append(f"a cut-off answer for {req.what}: {exc.partial[:200]!r}")
            return  # closed without an answer
        check(req, answer, outcome)
    finally:
        writer.close()


# -- the test --------------------------------------------------------------------------------------
@pytest.fixture
def fuzzed_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    server = start_live_server(
        tmp_path,
        DATABASE_URL=database_url,
        AUTH_JWT_SECRET=SECRET,
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        PRESIGN_RATE_PER_MINUTE="100000",
        MAX_PENDING_UPLOADS="1000000",
    )
    yield server
    stop_live_server(server)


def log_entries(path: Path) -> tuple[str, list[dict[str, Any]]]:
    text = path.read_text(errors="replace")
    entries = []
    for line in text.splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return text, entries


def test_malformed_requests_never_break_the_server(fuzzed_server: LiveServer) -> None:
    rng = random.Random(SEED)
    requests = list(build(rng, REQUESTS))
    assert len(requests) >= REQUESTS
    port = int(fuzzed_server.url.rsplit(":", 1)[1])
    outcome = asyncio.run(send_all(port, requests))
    assert not outcome.failures, f"{len(outcome.failures)} failures, first:\n" + "\n".join(outcome.failures[:5])

    # The server is still well after all that.
    outcome_ok = asyncio.run(
        send_all(
            port,
            [
                Req(
                    request("GET", "/readyz", [("X-Request-ID", "after")]),
                    method="GET",
                    request_id="after",
                    what="readyz",
                )
            ],
        )
    )
    assert outcome_ok.statuses == {200: 1}, outcome_ok

    text, entries = log_entries(fuzzed_server.log_path)
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text[-3000:]
    errors = [e for e in entries if e.get("level") in ("ERROR", "CRITICAL")]
    assert not errors, errors[:3]
    # One line per request the app saw: its access line, and nothing else with its id.
    by_id: dict[str, int] = {}
    for entry in entries:
        rid = entry.get("request_id")
        if rid and rid.startswith("fuzz-"):
            by_id[rid] = by_id.get(rid, 0) + 1
    missing = [rid for rid in outcome.app_ids if by_id.get(rid) != 1]
    assert not missing, [(rid, by_id.get(rid)) for rid in missing[:10]]
    # The run reached the app's refusals of every kind and its successes, not only uvicorn's parser.
    assert {200, 400, 401, 404, 405, 413} <= set(outcome.statuses), outcome.statuses
    assert len(outcome.app_ids) >= REQUESTS * 0.85, len(outcome.app_ids)
