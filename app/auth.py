"""JWT bearer auth (SPEC §7): who is calling, from the `Authorization: Bearer <jwt>` header.

HS256 with AUTH_JWT_SECRET or RS256 with AUTH_JWT_PUBLIC_KEY; only that one algorithm is accepted, so
a token cannot pick its own (no `alg: none`, no HS256 signed with the public key). `exp` and `sub` are
required; `iss` and `aud` are checked when configured. Without either key the server runs in
anonymous mode: every caller is anonymous and records have no owner.

Transports call `Authenticator.authenticate(request)` (GraphQL in `GraphQLApp.get_context`), or
`authenticate_writer(request)` for an endpoint that changes something (REST); a WebSocket passes the
value its client sent in `connection_init` to `authenticate_header`. A missing header gives an
anonymous caller (the transport decides what anonymous callers may do); a present but bad header always
raises `Unauthenticated`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, NamedTuple

import jwt
from starlette.requests import HTTPConnection

from app.errors import Unauthenticated
from app.settings import Settings
from app.uploads import Caller

log = logging.getLogger("app.auth")

# Clocks of token issuers and ours may differ a little; more would stretch every token's life.
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 8192
# Verified tokens remembered with the time window their claims allow: a client sends one token with
# every request for as long as it lives, and PyJWT spends about 40 us on each HS256 verification (an
# RS256 one costs more). Bounded in count, and only ordinary-sized tokens are kept.
REMEMBERED_TOKENS = 10_000
MAX_REMEMBERED_LENGTH = 2048


class _Verified(NamedTuple):
    subject: str
    valid_from: int | None  # the later of iat and nbf, when given
    expires: int


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.auth_jwt_secret:
            self.algorithm: str | None = "HS256"
            self.key: str | None = settings.auth_jwt_secret.value
        elif settings.auth_jwt_public_key:
            self.algorithm = "RS256"
            self.key = settings.auth_jwt_public_key.value
        else:
            self.algorithm = self.key = None
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def describe(self) -> str:
        if not self.enabled:
            return (
                "ANONYMOUS MODE: no AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is set; every caller may create "
                "records and change or delete every record it can read. Set one of them before exposing this server."
            )
        checks = [f"iss={self.settings.auth_jwt_issuer}"] if self.settings.auth_jwt_issuer else []
        checks += [f"aud={self.settings.auth_jwt_audience}"] if self.settings.auth_jwt_audience else []
        return f"JWT auth on ({self.algorithm}{', ' + ', '.join(checks) if checks else ''}); mutations need a token"

    def authenticate(self, request: HTTPConnection) -> Caller:
        return self.authenticate_header(request.headers.get("authorization"), self.anonymous(request))

    def authenticate_header(self, header: str | None, anonymous: Caller) -> Caller:
        """The caller an `Authorization` value names; `anonymous` when there is none."""
        if header is None:
            return anonymous
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        if not self.enabled:
            raise Unauthenticated("this server runs without auth and accepts no tokens; drop the Authorization header")
        return Caller(subject=self.verify(token.strip()))

    def expires_at(self, header: str) -> int:
        """When the token of an `Authorization` value that `authenticate_header` accepted expires
        (Unix seconds): a connection that outlives its token is closed then."""
        token = header.strip().partition(" ")[2].strip()
        remembered = self._verified.get(token)
        if remembered is not None:
            return remembered.expires
        # Verified a moment ago (it is too long to be remembered): only its `exp` is read again.
        return int(jwt.decode(token, options={"verify_signature": False})["exp"])

    def authenticate_writer(self, request: HTTPConnection) -> Caller:
        """As `authenticate`, for endpoints that change something: with auth on, an anonymous caller
        gets Unauthenticated, as GraphQL mutations do."""
        caller = self.authenticate(request)
        if self.enabled and caller.subject is None:
            raise Unauthenticated("this operation needs a token: send 'Authorization: Bearer <jwt>'")
        return caller

    @staticmethod
    def anonymous(request: HTTPConnection) -> Caller:
        return Caller(subject=None, address=request.client.host if request.client else None)

    def verify(self, token: str) -> str:
        """The token's subject, or Unauthenticated with a reason safe to show (never the key)."""
        remembered = self._verified.get(token)
        if remembered is not None:
            # PyJWT's own time checks, with the same leeway; outside the window the token is verified
            # again, which refuses it with the usual reason.
            now = time.time()
            if remembered.expires > now - LEEWAY_SECONDS and (
                remembered.valid_from is None or remembered.valid_from <= now + LEEWAY_SECONDS
            ):
                self._verified.move_to_end(token)
                return remembered.subject
            del self._verified[token]
        subject, claims = self._decode(token)
        if len(token) <= MAX_REMEMBERED_LENGTH:
            starts = [int(claims[c]) for c in ("iat", "nbf") if c in claims]
            self._verified[token] = _Verified(subject, max(starts) if starts else None, int(claims["exp"]))
            if len(self._verified) > REMEMBERED_TOKENS:
                self._verified.popitem(last=False)
        return subject

    def _decode(self, token: str) -> tuple[str, dict[str, Any]]:
        assert self.key is not None and self.algorithm is not None
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("the token is too long")
        required = ["exp", "sub"] + (["iss"] if self.settings.auth_jwt_issuer else [])
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                audience=self.settings.auth_jwt_audience,
                issuer=self.settings.auth_jwt_issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": required, "verify_aud": self.settings.auth_jwt_audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired; get a new one") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token is not valid: {_reason(exc)}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 255:
            raise Unauthenticated("the token's sub must be a non-empty string of at most 255 characters")
        return subject, claims


def _reason(exc: Exception) -> str:
    """PyJWT's messages name claims and algorithms, never key material; keep them short."""
    return str(exc)[:200] or type(exc).__name__
