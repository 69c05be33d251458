"""Pure: SigV4 query-string signing of S3 GET URLs, byte-identical to botocore 1.40.61.

Why it exists: `client.generate_presigned_url("get_object", ...)` runs botocore's whole request
pipeline (parameter validation, event hooks, endpoint rule set, serializer, signer) for every URL,
about 380 us each; a page of 100 private uploads must resolve in a few milliseconds. Everything that
does not depend on the key, the expiry or the clock is computed once in `__init__`, the signing key
once per UTC day, so a signature costs two percent-encodings, one SHA-256 and one HMAC.

Byte-identity means the same URL botocore returns for
    Session().client("s3", region_name=region, endpoint_url=endpoint_url, aws_access_key_id=...,
                     aws_secret_access_key=..., aws_session_token=...,
                     config=Config(signature_version="s3v4", s3={"addressing_style": style}))
    .generate_presigned_url("get_object", Params={"Bucket", "Key"[, "ResponseContentDisposition"]
                            [, "ResponseContentType"]}, ExpiresIn=expires_in)
at the same second, with no AWS config file or environment override of the endpoint (AWS_ENDPOINT_URL*,
AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT, s3 us_east_1_regional_endpoint = regional), which
this module cannot see. tests/test_sigv4.py checks it against botocore itself.

Supported (anything else raises ValueError in __init__ so the caller can fall back to botocore):
- bucket: DNS-compliant names only (3-63 of [a-z0-9.-], starting and ending alphanumeric, no "..",
  not IPv4-shaped, not an S3 Express / access point / Outposts alias, not an ARN);
- endpoint_url None, regions of the aws, aws-cn and aws-us-gov partitions, any addressing style;
- endpoint_url "http(s)://host[:port][/]" (host name or IPv4, no user info, path, query, fragment,
  not an s3-accelerate host) with addressing_style "auto" or "path" (both mean path style there).
  Custom endpoints with "virtual" raise: botocore's choice there depends on the scheme, on whether
  the host is an IP and on dots in the bucket name, and MinIO/moto deployments use path style anyway.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import quote, urlsplit

__all__ = ["MAX_EXPIRES_IN", "PresignedGetSigner"]

# SigV4 caps presigned URLs at seven days; S3 rejects longer ones, so refuse them here.
MAX_EXPIRES_IN = 604800

_ALGORITHM = "AWS4-HMAC-SHA256"
_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # botocore.auth.SIGV4_TIMESTAMP
_ISO8601 = "%Y-%m-%dT%H:%M:%SZ"  # botocore.auth.ISO8601, the POST policy's expiration
_FILENAME_VAR = "${filename}"  # S3 substitutes the uploaded file's name
# Characters percent_encode() leaves alone in query keys and values (botocore.utils.SAFE_CHARS).
_QUERY_SAFE = "-_.~"
# The serializer encodes the greedy {Key+} label with safe="/~": "/" stays a path separator.
_KEY_SAFE = "/~"

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
_IPV4_RE = re.compile(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}", re.ASCII)
# Suffixes that the S3 endpoint rule set routes to S3 Express, access points or Outposts.
_SPECIAL_BUCKET_SUFFIXES = ("--x-s3", "--xa-s3", "--op-s3")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9.])?", re.ASCII)
_PORT_RE = re.compile(r"[1-9][0-9]{0,4}", re.ASCII)

# (region pattern, DNS suffix, whether botocore presigns through the legacy global endpoint).
# Patterns are botocore's partitions.json regionRegex values narrowed to lowercase ASCII; the aws one
# does not match us-gov-*, us-iso*-* or eu-isoe-* regions, so the order only matters for readability.
_PARTITIONS: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z0-9]+-[0-9]+", re.ASCII), "amazonaws.com", True),
    (re.compile(r"cn-[a-z0-9]+-[0-9]+", re.ASCII), "amazonaws.com.cn", False),
    (re.compile(r"us-gov-[a-z0-9]+-[0-9]+", re.ASCII), "amazonaws.com", False),
)

# urllib.parse.quote for ASCII text as one str.translate: quote works byte by byte through a Python
# list comprehension (about 3 us for a Content-Disposition value, most of a signature's cost).
# Same output: every ASCII character outside the unreserved set and `safe` becomes %XX (uppercase).
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"


def _ascii_table(safe: str) -> dict[int, str]:
    return {c: f"%{c:02X}" for c in range(128) if chr(c) not in _UNRESERVED + safe}


_QUERY_TABLE = _ascii_table(_QUERY_SAFE)
_KEY_TABLE = _ascii_table(_KEY_SAFE)


def _quote_query(text: str) -> str:
    return text.translate(_QUERY_TABLE) if text.isascii() else quote(text, safe=_QUERY_SAFE)


def _quote_key(text: str) -> str:
    return text.translate(_KEY_TABLE) if text.isascii() else quote(text, safe=_KEY_SAFE)


_sha256 = hashlib.sha256
_hmac_digest = hmac.digest  # one-shot OpenSSL HMAC: much cheaper than hmac.new(...).hexdigest()
_now = time.time


class _Day(NamedTuple):
    """What changes once per UTC day: the derived signing key and the credential scope."""

    date: str  # YYYYMMDD
    signing_key: bytes
    auth_head: str  # "X-Amz-Algorithm=...&X-Amz-Credential=<encoded scope>&X-Amz-Date="
    scope: str  # "YYYYMMDD/<region>/s3/aws4_request", for the string to sign


class _Tick(NamedTuple):
    """The formatted timestamp for the last whole second seen, so the clock path skips strftime, and
    the GET URLs signed in that second: the same inputs in the same second give the same URL, and a
    GraphQL page often asks for one file's URL twice (say `properties` and `property_upload.url`)."""

    second: int
    amz_date: str
    day: _Day
    urls: dict[tuple[str, int, str | None, str | None], str]


# URLs remembered per second at most (a bound on memory, far above a page's worth).
_TICK_URLS = 4096


def _partition(region: str) -> tuple[str, bool]:
    for pattern, dns_suffix, global_presign in _PARTITIONS:
        if pattern.fullmatch(region):
            return dns_suffix, global_presign
    raise ValueError(f"region {region!r} is not in a supported partition (aws, aws-cn, aws-us-gov)")


def _check_bucket(bucket: str) -> None:
    if (
        not _BUCKET_RE.fullmatch(bucket)
        or ".." in bucket
        or _IPV4_RE.fullmatch(bucket)
        or bucket.endswith(_SPECIAL_BUCKET_SUFFIXES)
    ):
        raise ValueError(f"bucket {bucket!r} is not a plain DNS-compliant bucket name")


def _aws_origin(bucket: str, region: str, addressing_style: str) -> tuple[str, bool]:
    """Return (https origin, virtual-hosted?) as botocore's S3 rule set picks it without endpoint_url."""
    dns_suffix, global_presign = _partition(region)
    # A bucket with dots is not a single DNS label: botocore (handlers.customize_endpoint_resolver_builtins
    # and the rule set's isVirtualHostableS3Bucket) silently falls back to path style for it.
    virtual_hostable = "." not in bucket
    # Legacy us-east-1 (us_east_1_regional_endpoint = "legacy", the default) is s3.amazonaws.com.
    regional = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.{dns_suffix}"
    if addressing_style == "path" or not virtual_hostable:
        return f"https://{regional}", False
    if addressing_style == "auto" and global_presign:
        # signers._should_use_global_endpoint: in the aws partition, presigned URLs without an explicit
        # "virtual" style go to the global endpoint whatever the client region; the signing region
        # stays the client's (generate_presigned_url passes ignore_signing_region=True).
        return f"https://{bucket}.s3.amazonaws.com", True
    return f"https://{bucket}.{regional}", True


def _custom_origin(endpoint_url: str, addressing_style: str) -> tuple[str, str]:
    """Return (origin as botocore writes it, canonical host header) for a custom endpoint."""
    if addressing_style == "virtual":
        raise ValueError("virtual addressing on a custom endpoint_url is not supported; use botocore")
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"endpoint_url scheme must be http or https, got {endpoint_url!r}")
    if parts.query or parts.fragment or "?" in endpoint_url or "#" in endpoint_url:
        raise ValueError(f"endpoint_url must not carry a query or fragment: {endpoint_url!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"endpoint_url with a path prefix is not supported: {endpoint_url!r}")
    netloc = parts.netloc
    host, sep, port = netloc.partition(":")
    if "@" in netloc or not _HOSTNAME_RE.fullmatch(host) or (sep and not _PORT_RE.fullmatch(port)):
        raise ValueError(f"endpoint_url host must be a plain host name or IPv4[:port]: {endpoint_url!r}")
    if sep and int(port) > 65535:
        raise ValueError(f"endpoint_url port out of range: {endpoint_url!r}")
    if host.lower().startswith("s3-accelerate."):
        # botocore treats accelerate URLs differently (virtual style, own rules).
        raise ValueError("s3-accelerate endpoints are not supported; use botocore")
    # auth._host_from_url: lowercase host, port dropped only when it is the scheme's default.
    host_header = host.lower()
    if sep and int(port) != {"http": 80, "https": 443}[parts.scheme]:
        host_header = f"{host_header}:{port}"
    # The rule set rebuilds the URL from scheme and authority as given (case and default port kept).
    return f"{parts.scheme}://{netloc}", host_header


class PresignedGetSigner:
    """Presigns S3 GET URLs and POST policies for one bucket with static credentials.

    Construct once per (credentials, bucket, endpoint) and reuse; `presign_get` is thread-safe (the
    caches are replaced by single attribute assignments, never mutated in place).
    """

    __slots__ = (
        "_access_key",
        "_access_key_q",
        "_bucket",
        "_canonical_auth_tail",
        "_canonical_tail",
        "_day_cache",
        "_origin",
        "_path_prefix",
        "_post_url",
        "_region",
        "_secret",
        "_session_token",
        "_tick",
        "_url_auth_tail",
    )

    def __init__(
        self,
        *,
        access_key: str,
        secret_key: str,
        session_token: str | None,
        region: str,
        endpoint_url: str | None,
        bucket: str,
        addressing_style: str = "auto",
    ) -> None:
        if not access_key or not secret_key:
            raise ValueError("access_key and secret_key are required")
        if addressing_style not in ("auto", "path", "virtual"):
            raise ValueError(f"addressing_style must be auto, path or virtual, got {addressing_style!r}")
        _check_bucket(bucket)
        if endpoint_url is None:
            origin, virtual = _aws_origin(bucket, region, addressing_style)
            host_header = origin.removeprefix("https://")
        else:
            # With a custom endpoint the region only names the credential scope; botocore's rule set
            # still refuses names that are not host labels, so accept plain lowercase names only.
            if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", region, re.ASCII):
                raise ValueError(f"region {region!r} is not a valid region name")
            origin, host_header = _custom_origin(endpoint_url, addressing_style)
            virtual = False

        self._region = region
        self._secret = secret_key
        self._access_key = access_key
        self._session_token = session_token
        self._bucket = bucket
        # generate_presigned_post serialises CreateBucket: the bucket's root, "/" when virtual-hosted.
        self._post_url = f"{origin}/" if virtual else f"{origin}/{bucket}"
        self._origin = origin
        self._path_prefix = "/" if virtual else f"/{bucket}/"
        self._access_key_q = quote(access_key, safe=_QUERY_SAFE)
        # The URL lists auth params in botocore's dict order (token last); the canonical query string
        # sorts them by encoded name, which puts X-Amz-Security-Token before X-Amz-SignedHeaders.
        if session_token is None:
            self._url_auth_tail = "&X-Amz-SignedHeaders=host"
            self._canonical_auth_tail = "&X-Amz-SignedHeaders=host"
        else:
            token_q = quote(session_token, safe=_QUERY_SAFE)
            self._url_auth_tail = f"&X-Amz-SignedHeaders=host&X-Amz-Security-Token={token_q}"
            self._canonical_auth_tail = f"&X-Amz-Security-Token={token_q}&X-Amz-SignedHeaders=host"
        # Only "host" is signed; S3 presigned URLs carry the UNSIGNED-PAYLOAD marker as body hash.
        self._canonical_tail = f"\nhost:{host_header}\n\nhost\nUNSIGNED-PAYLOAD"
        self._day_cache: dict[str, _Day] = {}
        self._tick = _Tick(-1, "", _Day("", b"", "", ""), {})  # never matches a real second

    def _day(self, date: str) -> _Day:
        day = self._day_cache.get(date)
        if day is None:
            k = _hmac_digest(f"AWS4{self._secret}".encode(), date.encode(), "sha256")
            k = _hmac_digest(k, self._region.encode(), "sha256")
            k = _hmac_digest(k, b"s3", "sha256")
            k = _hmac_digest(k, b"aws4_request", "sha256")
            scope = f"{date}/{self._region}/s3/aws4_request"
            credential = f"{self._access_key_q}%2F{quote(scope, safe=_QUERY_SAFE)}"
            day = _Day(date, k, f"X-Amz-Algorithm={_ALGORITHM}&X-Amz-Credential={credential}&X-Amz-Date=", scope)
            # Bounded to two days (the newest known one and this one) so a long-lived signer does not
            # grow; keeping one neighbour lets calls straddling midnight UTC reuse their key. Replaced,
            # not mutated, so concurrent readers never see a half-updated dict.
            cache = {date: day}
            if self._day_cache:
                newest = max(self._day_cache)
                cache[newest] = self._day_cache[newest]
            self._day_cache = cache
        return day

    def _current_tick(self) -> _Tick:
        second = int(_now())
        tick = self._tick
        if tick.second != second:
            amz_date = time.strftime(_TIMESTAMP_FORMAT, time.gmtime(second))
            tick = _Tick(second, amz_date, self._day(amz_date[:8]), {})
            self._tick = tick
        return tick

    def _timestamp(self, now: datetime | None) -> tuple[str, _Day, int]:
        """(YYYYMMDDTHHMMSSZ, that day's key, epoch second) for `now` or the clock."""
        if now is None:
            tick = self._current_tick()
            return tick.amz_date, tick.day, tick.second
        # botocore formats a naive UTC datetime; a naive `now` is taken to be UTC as well.
        if now.tzinfo is not None:
            now = now.astimezone(UTC)
        amz_date = now.strftime(_TIMESTAMP_FORMAT)
        return amz_date, self._day(amz_date[:8]), calendar.timegm(now.timetuple())

    def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        response_content_disposition: str | None = None,
        response_content_type: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """Return a presigned GET URL for `key`, valid `expires_in` seconds (1..604800) from `now`."""
        if type(expires_in) is not int or not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise ValueError(f"expires_in must be an int in 1..{MAX_EXPIRES_IN}, got {expires_in!r}")
        if not key:
            raise ValueError("key must be a non-empty string")  # botocore: Key has min length 1
        if now is None:
            tick = self._current_tick()  # one tick object: its timestamp and its memo go together
            inputs = (key, expires_in, response_content_disposition, response_content_type)
            url = tick.urls.get(inputs)
            if url is None:
                url = self._sign("GET", *inputs, tick.amz_date, tick.day)
                if len(tick.urls) < _TICK_URLS:
                    tick.urls[inputs] = url
            return url
        amz_date, day, _ = self._timestamp(now)
        return self._sign("GET", key, expires_in, response_content_disposition, response_content_type, amz_date, day)

    def presign_head(self, key: str, expires_in: int, *, now: datetime | None = None) -> str:
        """A presigned HEAD URL for `key`, as botocore's generate_presigned_url("head_object") gives it:
        the server asks storage about an upload without botocore's request pipeline."""
        if type(expires_in) is not int or not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise ValueError(f"expires_in must be an int in 1..{MAX_EXPIRES_IN}, got {expires_in!r}")
        if not key:
            raise ValueError("key must be a non-empty string")
        amz_date, day, _ = self._timestamp(now)
        return self._sign("HEAD", key, expires_in, None, None, amz_date, day)

    def _sign(
        self,
        method: str,
        key: str,
        expires_in: int,
        response_content_disposition: str | None,
        response_content_type: str | None,
        amz_date: str,
        day: _Day,
    ) -> str:
        path = self._path_prefix + _quote_key(key)
        auth = f"{day.auth_head}{amz_date}&X-Amz-Expires={expires_in}"
        # Operation params come first in the URL in the order botocore's caller passes them
        # (disposition, then type); in the canonical query they sort after every X-Amz-* name.
        op_params = ""
        canonical_ops = ""
        if response_content_disposition is not None:
            v = _quote_query(response_content_disposition)
            op_params = f"response-content-disposition={v}&"
            canonical_ops = f"&response-content-disposition={v}"
        if response_content_type is not None:
            v = _quote_query(response_content_type)
            op_params += f"response-content-type={v}&"
            canonical_ops += f"&response-content-type={v}"

        canonical_request = f"{method}\n{path}\n{auth}{self._canonical_auth_tail}{canonical_ops}{self._canonical_tail}"
        string_to_sign = f"{_ALGORITHM}\n{amz_date}\n{day.scope}\n{_sha256(canonical_request.encode()).hexdigest()}"
        signature = _hmac_digest(day.signing_key, string_to_sign.encode(), "sha256").hex()
        return f"{self._origin}{path}?{op_params}{auth}{self._url_auth_tail}&X-Amz-Signature={signature}"

    def presign_post(
        self,
        key: str,
        fields: dict[str, str],
        conditions: list[object],
        expires_in: int,
        *,
        now: datetime | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Return (form URL, form fields) as botocore's generate_presigned_post(Bucket, Key, Fields,
        Conditions, ExpiresIn) does, same field order and same policy bytes. The arguments are not
        modified. Costs one JSON dump, one base64 and one HMAC instead of botocore's request pipeline."""
        if type(expires_in) is not int or expires_in < 1:
            raise ValueError(f"expires_in must be a positive int, got {expires_in!r}")
        amz_date, day, second = self._timestamp(now)
        expiration = time.strftime(_ISO8601, time.gmtime(second + expires_in))
        credential = f"{self._access_key}/{day.scope}"
        out = dict(fields)
        out["key"] = key
        out["x-amz-algorithm"] = _ALGORITHM
        out["x-amz-credential"] = credential
        out["x-amz-date"] = amz_date
        policy_conditions = [
            *conditions,
            {"bucket": self._bucket},
            ["starts-with", "$key", key[: -len(_FILENAME_VAR)]] if key.endswith(_FILENAME_VAR) else {"key": key},
            {"x-amz-algorithm": _ALGORITHM},
            {"x-amz-credential": credential},
            {"x-amz-date": amz_date},
        ]
        if self._session_token is not None:
            out["x-amz-security-token"] = self._session_token
            policy_conditions.append({"x-amz-security-token": self._session_token})
        policy = base64.b64encode(json.dumps({"expiration": expiration, "conditions": policy_conditions}).encode())
        out["policy"] = policy.decode()
        out["x-amz-signature"] = _hmac_digest(day.signing_key, policy, "sha256").hex()
        return self._post_url, out
