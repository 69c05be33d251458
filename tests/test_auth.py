"""JWT auth as a hostile client meets it: forged, expired and mis-scoped tokens, anonymous writes,
and one user trying to change, confirm into or read what belongs to another."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.main import create_app
from app.models import Record, Upload
from app.settings import Settings, SettingsError
from tests import files
from tests.conftest import Harness, post_form, uploaded_key
from tests.gql import ATTACHMENT_PRESIGN, IMAGE_PRESIGN, RECORD, RECORD_CREATE, RECORD_DELETE, RECORD_UPDATE, TABLES

SECRET = "s3cr3t-for-tests-only-" + "0123456789abcdef" * 3


def token(sub: str | None = "alice", *, key: Any = SECRET, alg: str = "HS256", **claims: Any) -> str:
    payload: dict[str, Any] = {"exp": int(time.time()) + 300, **claims}
    if sub is not None:
        payload["sub"] = sub
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=alg)


def bearer(sub: str = "alice", **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, **claims)}"}


@pytest.fixture
async def authed(harness_factory: Any) -> Harness:
    harness: Harness = await harness_factory(AUTH_JWT_SECRET=SECRET)
    return harness


async def upload_as(h: Harness, who: str, *, table: str = "photos", prop: str = "image") -> str:
    if table == "photos":
        query, variables, data, name, ctype = IMAGE_PRESIGN, {"type": "image/png"}, files.png(), "a.png", "image/png"
    else:
        query, variables = ATTACHMENT_PRESIGN, {"type": "application/pdf"}
        data, name, ctype = files.pdf(), "cv.pdf", "application/pdf"
    presigned = next(iter((await h.ok(query, {"table": table, "prop": prop, **variables}, **bearer(who))).values()))
    assert (await post_form(presigned, data, name, ctype)).status_code == 201
    return f"{presigned['upload_url'].rstrip('/')}/{quote(uploaded_key(presigned, name))}"


async def create_as(h: Harness, who: str, url: str, *, table: str = "photos", prop: str = "image") -> dict[str, Any]:
    props = [{"name": prop, "value": url}]
    created: dict[str, Any] = (
        await h.ok(RECORD_CREATE, {"table": table, "prop": prop, "props": props}, **bearer(who))
    )["record_create"]
    return created


async def test_anonymous_may_read_but_not_write(authed: Harness) -> None:
    h = authed
    assert (await h.ok(TABLES))["tables"]
    assert await h.error_code(IMAGE_PRESIGN, {"table": "photos", "prop": "image"}) == "UNAUTHENTICATED"
    props = [{"name": "caption", "value": "x"}]
    body = await h.gql(RECORD_CREATE, {"table": "photos", "prop": "image", "props": props})
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await Record.all().count() == 0 and await Upload.all().count() == 0


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + token(exp=int(time.time()) - 120),  # expired beyond the leeway
        "Bearer " + token(key="another-secret-" + "x" * 60),  # forged signature
        "Bearer " + token(exp=None),  # no exp: tokens must expire
        "Bearer " + token(sub=None),  # no subject
        "Bearer " + token(sub=""),
        "Bearer " + jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, None, algorithm="none"),
        "Bearer " + token(alg="HS512"),  # only the configured algorithm is accepted
        "Bearer not.a.jwt",
        "Bearer " + "a" * 9000,
        "Basic YWxpY2U6cGFzcw==",
        "Bearer",
    ],
    ids=[
        "expired",
        "forged",
        "no-exp",
        "no-sub",
        "empty-sub",
        "alg-none",
        "other-alg",
        "garbage",
        "huge",
        "basic",
        "empty",
    ],
)
async def test_bad_tokens_are_refused_even_for_reads(authed: Harness, header: str) -> None:
    h = authed
    assert await h.error_code(TABLES, Authorization=header) == "UNAUTHENTICATED"
    assert await h.error_code(IMAGE_PRESIGN, {"table": "photos", "prop": "image"}, Authorization=header) == (
        "UNAUTHENTICATED"
    )
    assert await Upload.all().count() == 0


async def test_token_within_leeway_is_accepted(authed: Harness) -> None:
    data = await authed.ok(TABLES, Authorization="Bearer " + token(exp=int(time.time()) - 5))
    assert data["tables"]


async def test_two_users_cannot_touch_each_others_records(authed: Harness) -> None:
    h = authed
    alice_record = await create_as(h, "alice", await upload_as(h, "alice"))
    assert (await Record.get(id=int(alice_record["id"]))).owner == "alice"
    bob_url = await upload_as(h, "bob")

    for query, variables in [
        (RECORD_UPDATE, {"id": alice_record["id"], "prop": "image", "props": [{"name": "caption", "value": "pwned"}]}),
        (RECORD_UPDATE, {"id": alice_record["id"], "prop": "image", "props": [{"name": "image", "value": bob_url}]}),
        (RECORD_UPDATE, {"id": alice_record["id"], "prop": "image", "props": [{"name": "image", "value": None}]}),
        (RECORD_DELETE, {"id": alice_record["id"]}),
    ]:
        assert await h.error_code(query, variables, **bearer("bob")) == "FORBIDDEN"

    record = await Record.get(id=int(alice_record["id"]))
    assert "caption" not in record.properties
    after = (await h.ok(RECORD, {"id": alice_record["id"], "prop": "image"}))["record"]
    assert after["upload"]["url"] == alice_record["upload"]["url"]
    # Her own update still works, with the same token machinery.
    variables = {"id": alice_record["id"], "prop": "image", "props": [{"name": "caption", "value": "mine"}]}
    assert (await h.ok(RECORD_UPDATE, variables, **bearer("alice")))["record_update"]["properties"]["caption"] == "mine"


async def test_cross_user_confirm_is_forbidden_and_keeps_the_file(authed: Harness) -> None:
    h = authed
    alice_url = await upload_as(h, "alice")
    props = [{"name": "image", "value": alice_url}]
    body = await h.gql(RECORD_CREATE, {"table": "photos", "prop": "image", "props": props}, **bearer("bob"))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Record.all().count() == 0
    # Bob's attempt neither stole nor destroyed it: Alice can still save her upload.
    created = await create_as(h, "alice", alice_url)
    assert created["upload"]["size"] == len(files.png())


async def test_private_file_urls_only_for_the_owner(authed: Harness) -> None:
    h = authed
    created = await create_as(
        h, "alice", await upload_as(h, "alice", table="documents", prop="resume"), table="documents", prop="resume"
    )
    assert "X-Amz-Signature" in created["upload"]["url"]
    query = 'query($id: ID!) { record(id: $id) { properties property_upload(name: "resume") { url size } } }'
    # documents is `read: owner`: to others the record does not exist at all (tests/test_access.py
    # has private files in a table everyone reads).
    for headers in (bearer("bob"), {}):
        assert (await h.ok(query, {"id": created["id"]}, **headers))["record"] is None
    mine = (await h.ok(query, {"id": created["id"]}, **bearer("alice")))["record"]
    assert "X-Amz-Signature" in mine["property_upload"]["url"]


async def test_issuer_and_audience_are_checked_with_rs256(harness_factory: Any) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    h: Harness = await harness_factory(
        AUTH_JWT_PUBLIC_KEY=pem.decode(), AUTH_JWT_ISSUER="https://id.example", AUTH_JWT_AUDIENCE="uploads"
    )

    def rs(**claims: Any) -> str:
        return "Bearer " + token(key=private, alg="RS256", **claims)

    good = rs(iss="https://id.example", aud="uploads")
    assert (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image"}, Authorization=good))["image_presign_url"]
    assert (await Upload.get()).owner == "alice"
    for bad in (
        rs(iss="https://evil.example", aud="uploads"),
        rs(iss="https://id.example", aud="other"),
        rs(aud="uploads"),
        rs(iss="https://id.example"),
        # HS256 signed with the public key as secret: the classic algorithm-confusion forgery.
        "Bearer " + _hs256_with(pem, iss="https://id.example", aud="uploads"),
    ):
        assert await h.error_code(TABLES, Authorization=bad) == "UNAUTHENTICATED"


def _hs256_with(key: bytes, **claims: Any) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "mallory", "exp": int(time.time()) + 300, **claims}).encode())
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


async def test_anonymous_mode_is_announced_and_refuses_tokens(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app"):
        create_app(h.settings)
    assert any("ANONYMOUS MODE" in r.getMessage() for r in caplog.records)
    # Anonymous mode: writes work without a token, and a token is an error rather than silently ignored.
    assert (await h.ok(IMAGE_PRESIGN, {"table": "photos", "prop": "image"}))["image_presign_url"]
    assert await h.error_code(TABLES, **bearer("alice")) == "UNAUTHENTICATED"


async def test_auth_mode_is_announced(authed: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app"):
        create_app(authed.settings)
    messages = [r.getMessage() for r in caplog.records]
    assert any("JWT auth on (HS256)" in m for m in messages)
    assert not any(SECRET in m for m in messages)


def test_auth_settings_fail_loudly_and_never_print_the_secret() -> None:
    settings = Settings.from_env({"AUTH_JWT_SECRET": SECRET})
    assert settings.auth_enabled and SECRET not in repr(settings)
    with pytest.raises(SettingsError, match="at least 32"):
        Settings.from_env({"AUTH_JWT_SECRET": "short"})
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env({"AUTH_JWT_SECRET": SECRET, "AUTH_JWT_PUBLIC_KEY": "x"})
    with pytest.raises(SettingsError, match="PEM"):
        Settings.from_env({"AUTH_JWT_PUBLIC_KEY": "not a key"})
    assert not Settings.from_env({}).auth_enabled


async def test_authenticate_for_other_transports(authed: Harness) -> None:
    from starlette.requests import Request

    from app.errors import Unauthenticated

    auth = authed.app.state.services.auth

    def request(**headers: str) -> Request:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        scope = {"type": "http", "headers": raw, "app": authed.app, "client": ("10.0.0.7", 5000)}
        return Request(scope)

    assert auth.authenticate_writer(request(**bearer("carol"))).subject == "carol"
    anonymous = auth.authenticate(request())
    assert anonymous.subject is None and anonymous.address == "10.0.0.7"
    with pytest.raises(Unauthenticated):
        auth.authenticate_writer(request())
    with pytest.raises(Unauthenticated):
        auth.authenticate(request(Authorization="Bearer " + token(exp=1)))


class Clock:
    """Moves the time that both app.auth and PyJWT read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import datetime as dt

        import jwt.api_jwt

        self.now = time.time()
        clock = self

        class Frozen(dt.datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return dt.datetime.fromtimestamp(clock.now, tz)

        monkeypatch.setattr(jwt.api_jwt, "datetime", Frozen)
        monkeypatch.setattr("app.auth.time.time", lambda: clock.now)


def test_verified_tokens_are_remembered_within_their_time_window(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import auth
    from app.auth import Authenticator
    from app.errors import Unauthenticated

    clock = Clock(monkeypatch)
    authenticator = Authenticator(Settings.from_env({"AUTH_JWT_SECRET": SECRET}))
    decodes: list[str] = []
    real_decode = jwt.decode
    monkeypatch.setattr(auth.jwt, "decode", lambda token, *a, **k: decodes.append(token) or real_decode(token, *a, **k))

    short = token("alice", exp=int(clock.now) + 100)
    assert [authenticator.verify(short) for _ in range(3)] == ["alice"] * 3
    assert len(decodes) == 1  # verified once, then remembered
    clock.now += 100 + auth.LEEWAY_SECONDS - 1
    assert authenticator.verify(short) == "alice" and len(decodes) == 1  # still inside the leeway
    clock.now += 2
    with pytest.raises(Unauthenticated, match="expired"):
        authenticator.verify(short)  # verified again, refused as before
    with pytest.raises(Unauthenticated, match="expired"):
        authenticator.verify(short)

    # Not valid yet: refused, not remembered; once valid, remembered only for its window.
    start = int(clock.now) + 100
    later = token("bob", nbf=start, exp=start + 1000)
    with pytest.raises(Unauthenticated, match="not yet valid"):
        authenticator.verify(later)
    clock.now = start
    assert authenticator.verify(later) == "bob"
    clock.now = start - auth.LEEWAY_SECONDS - 1  # the clock went back
    with pytest.raises(Unauthenticated, match="not yet valid"):
        authenticator.verify(later)

    # A forged token with a remembered token's claims is not the remembered token.
    forged = token("alice", key="another-secret-" + "x" * 60, exp=int(clock.now) + 100)
    with pytest.raises(Unauthenticated, match="not valid"):
        authenticator.verify(forged)

    # Bounded: the least recently used go first.
    monkeypatch.setattr(auth, "REMEMBERED_TOKENS", 2)
    tokens = [token(f"u{i}", exp=int(clock.now) + 100) for i in range(3)]
    for t in tokens:
        authenticator.verify(t)
    decodes.clear()
    assert authenticator.verify(tokens[0]) == "u0" and len(decodes) == 1
    assert authenticator.verify(tokens[2]) == "u2" and len(decodes) == 1
