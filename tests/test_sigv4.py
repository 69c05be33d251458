"""app.sigv4 must return exactly what botocore's generate_presigned_url("get_object") returns.

botocore is the oracle: both sides sign at the same instant (botocore's clock is frozen by patching
`botocore.auth.get_current_datetime`, which SigV4Auth.add_auth calls for its timestamp in 1.40.x) and the
URLs are compared as strings. Inputs are random but seeded, so a failure reproduces.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.config import Config

from app import sigv4
from app.sigv4 import MAX_EXPIRES_IN, PresignedGetSigner

SEED = 20240506

AWS_REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]
CUSTOM_ENDPOINTS = [
    "http://127.0.0.1:5000",  # moto server
    "http://localhost:9000",  # MinIO
    "http://MinIO.Local:80/",  # default port spelled out, upper case host, trailing slash
    "https://minio.example.com",
    "https://minio.example.com:9443",
    "HTTPS://Minio.Example.com",  # botocore lower-cases the scheme, keeps the host as written
    "https://s3.example.com:443",
    "http://10.0.0.7:443",  # 443 is not the default port of http: it stays in the host header
    "https://s3.eu-west-1.amazonaws.com",  # an AWS host given explicitly is still path style
    "https://storage.example.org./",  # fully qualified host name with its trailing dot
]
BUCKETS = ["my-bucket", "uploads.example.com", "a1b", "b" * 63, "bucket-with-dash-123", "x.y.z"]

DISPOSITION = "attachment; filename=\"x y.pdf\"; filename*=UTF-8''%E2%82%AC.pdf"
CONTENT_TYPES = ["image/png", "text/plain; charset=utf-8", "application/octet-stream", ""]
# Pieces random keys are assembled from: everything percent-encoding can trip over.
KEY_PIECES = [
    *"abcxyzABCXYZ0189",
    " ", "  ", "+", "%", "%20", "%2F", "~", "!", "*", "'", "(", ")", "=", "&", "?", "#", ";", ":", "@",
    "$", ",", "[", "]", "{", "}", "^", "`", "|", "\\", '"', "<", ">", "-", "_", ".", "..",
    "/", "/", "//", "/./", "/../",
    "é", "ü", "ß", "€", "日本語", "😀", "e\u0301", "\u00a0", "\u200b", "\ufeff", "\t", "\n", "\x7f",
]  # fmt: skip
HERMETIC_ENV = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
]


@dataclass(frozen=True)
class Setup:
    region: str
    endpoint_url: str | None
    style: str
    access_key: str
    secret_key: str
    session_token: str | None


@pytest.fixture(scope="module")
def boto_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[boto3.session.Session]:
    """A session that sees no developer config: endpoint or FIPS overrides would change botocore's URL."""
    missing = tmp_path_factory.mktemp("aws") / "missing"
    with pytest.MonkeyPatch.context() as mp:
        for name in HERMETIC_ENV:
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", str(missing))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
        # One session, many clients: same behaviour as Session().client(...) each time, 15x cheaper.
        yield boto3.session.Session()


def botocore_url(
    session: boto3.session.Session,
    setup: Setup,
    bucket: str,
    key: str,
    expires_in: int,
    now: datetime,
    disposition: str | None = None,
    content_type: str | None = None,
    _clients: dict[Setup, Any] = {},  # noqa: B006 - deliberate per-process client cache
    operation: str = "get_object",
) -> str:
    client = _clients.get(setup)
    if client is None:
        client = session.client(
            "s3",
            region_name=setup.region,
            endpoint_url=setup.endpoint_url,
            aws_access_key_id=setup.access_key,
            aws_secret_access_key=setup.secret_key,
            aws_session_token=setup.session_token,
            config=Config(signature_version="s3v4", s3={"addressing_style": setup.style}),
        )
        _clients[setup] = client
    params: dict[str, str] = {"Bucket": bucket, "Key": key}
    if disposition is not None:
        params["ResponseContentDisposition"] = disposition
    if content_type is not None:
        params["ResponseContentType"] = content_type
    naive_utc = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive_utc):
        url: str = client.generate_presigned_url(operation, Params=params, ExpiresIn=expires_in)
    return url


def signer_for(setup: Setup, bucket: str) -> PresignedGetSigner:
    return PresignedGetSigner(
        access_key=setup.access_key,
        secret_key=setup.secret_key,
        session_token=setup.session_token,
        region=setup.region,
        endpoint_url=setup.endpoint_url,
        bucket=bucket,
        addressing_style=setup.style,
    )


def random_key(rng: random.Random) -> str:
    if rng.random() < 0.2:
        # Shaped like the keys app.keys makes: <table>/<property>/<token>/<file name>.
        token = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        return f"photos/image/{token}/{random_text(rng) or 'f'}.{rng.choice(['jpg', 'pdf', 'tar.gz'])}"
    key = "".join(rng.choice(KEY_PIECES) for _ in range(rng.randint(1, 24)))
    if rng.random() < 0.15:
        key = rng.choice(["/", "//", "/a/", "./", "../"]) + key  # leading slash / dot segments
    return key


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(KEY_PIECES) for _ in range(rng.randint(0, 12)))


def random_now(rng: random.Random) -> datetime:
    offset = timedelta(seconds=rng.randrange(100 * 365 * 86400), microseconds=rng.randrange(10**6))
    naive = datetime(2000, 1, 1) + offset
    if rng.random() < 0.2:
        # The same instant, tz-aware in some other zone: ours must convert it to UTC like botocore's clock.
        tz = timezone(timedelta(minutes=rng.choice([-600, -330, 60, 120, 345, 840])))
        return naive.replace(tzinfo=UTC).astimezone(tz)
    return naive


def random_expiry(rng: random.Random) -> int:
    return rng.choice([1, 60, 900, 3600, 86400, MAX_EXPIRES_IN - 1, MAX_EXPIRES_IN, rng.randint(1, MAX_EXPIRES_IN)])


def random_credentials(rng: random.Random) -> tuple[str, str, str | None]:
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    access_key = rng.choice(["AKIA", "ASIA"]) + "".join(rng.choice(alnum) for _ in range(16))
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    secret_key = "".join(rng.choice(b64) for _ in range(40))
    token = None if rng.random() < 0.5 else "".join(rng.choice(b64) for _ in range(rng.randint(100, 400))) + "=="
    return access_key, secret_key, token


def all_setups(rng: random.Random) -> list[Setup]:
    setups = []
    for region in AWS_REGIONS:
        for style in ("auto", "path", "virtual"):
            for _ in range(2):
                setups.append(Setup(region, None, style, *random_credentials(rng)))
    for endpoint in CUSTOM_ENDPOINTS:
        for style in ("auto", "path"):
            for region in rng.sample(AWS_REGIONS, 2):
                setups.append(Setup(region, endpoint, style, *random_credentials(rng)))
    return setups


def test_random_inputs_are_byte_identical_to_botocore(boto_session: boto3.session.Session) -> None:
    rng = random.Random(SEED)
    compared = 0
    for setup in all_setups(rng):
        # Both token cases appear across setups; make sure each setup also sees every bucket shape.
        for bucket in BUCKETS:
            signer = signer_for(setup, bucket)
            for _ in range(5):
                key = random_key(rng)
                expires_in = random_expiry(rng)
                now = random_now(rng)
                disposition = rng.choice([None, None, DISPOSITION, "inline", "", random_text(rng)])
                content_type = rng.choice([None, None, *CONTENT_TYPES, random_text(rng)])
                expected = botocore_url(boto_session, setup, bucket, key, expires_in, now, disposition, content_type)
                got = signer.presign_get(
                    key,
                    expires_in,
                    response_content_disposition=disposition,
                    response_content_type=content_type,
                    now=now,
                )
                assert got == expected, (setup, bucket, key, expires_in, now, disposition, content_type)
                compared += 1
    assert compared >= 2000


def test_random_head_urls_are_byte_identical_to_botocore(boto_session: boto3.session.Session) -> None:
    """presign_head is what Storage.head sends (HEAD of an uploaded object, without botocore)."""
    rng = random.Random(SEED + 1)
    compared = 0
    for setup in all_setups(rng):
        for bucket in rng.sample(BUCKETS, 3):
            signer = signer_for(setup, bucket)
            for _ in range(2):
                key, expires_in, now = random_key(rng), random_expiry(rng), random_now(rng)
                expected = botocore_url(boto_session, setup, bucket, key, expires_in, now, operation="head_object")
                assert signer.presign_head(key, expires_in, now=now) == expected, (setup, bucket, key, expires_in)
                compared += 1
    assert compared >= 400


def test_aws_documentation_example() -> None:
    # Independent of botocore: the worked example of AWS's "Authenticating Requests: Using Query
    # Parameters" page (us-east-1, virtual-hosted, 24 h).
    signer = PresignedGetSigner(
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token=None,
        region="us-east-1",
        endpoint_url=None,
        bucket="examplebucket",
    )
    url = signer.presign_get("test.txt", 86400, now=datetime(2013, 5, 24))
    assert url.startswith("https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&")
    assert url.endswith("&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")


@pytest.mark.parametrize("endpoint_url", [None, "http://127.0.0.1:5000"])
def test_expiry_bounds(boto_session: boto3.session.Session, endpoint_url: str | None) -> None:
    setup = Setup("eu-west-1", endpoint_url, "auto", "AKIDEXAMPLE", "secret", None)
    signer = signer_for(setup, "my-bucket")
    now = datetime(2024, 5, 6, 7, 8, 9)
    for ok in (1, MAX_EXPIRES_IN):
        assert signer.presign_get("k", ok, now=now) == botocore_url(boto_session, setup, "my-bucket", "k", ok, now)
    for bad in (0, -1, MAX_EXPIRES_IN + 1, 10**9, 1.5, True, "900", None):
        with pytest.raises(ValueError, match="expires_in"):
            signer.presign_get("k", bad, now=now)  # type: ignore[arg-type]


def test_empty_key_is_rejected_like_botocore_param_validation() -> None:
    signer = signer_for(Setup("eu-west-1", None, "auto", "AKIDEXAMPLE", "secret", None), "my-bucket")
    with pytest.raises(ValueError, match="key"):
        signer.presign_get("", 900)


def test_signing_key_cache_rolls_over_at_midnight_utc(boto_session: boto3.session.Session) -> None:
    setup = Setup("eu-west-1", None, "path", "AKIDEXAMPLE", "secret", "token")
    signer = signer_for(setup, "my-bucket")
    before = datetime(2024, 12, 31, 23, 59, 59, 999999)
    after = datetime(2025, 1, 1, 0, 0, 0)

    url_before = signer.presign_get("k", 900, now=before)
    assert "X-Amz-Credential=AKIDEXAMPLE%2F20241231%2F" in url_before
    key_before = signer._day_cache["20241231"].signing_key
    url_after = signer.presign_get("k", 900, now=after)
    assert "X-Amz-Credential=AKIDEXAMPLE%2F20250101%2F" in url_after
    assert signer._day_cache["20250101"].signing_key != key_before
    assert url_before == botocore_url(boto_session, setup, "my-bucket", "k", 900, before)
    assert url_after == botocore_url(boto_session, setup, "my-bucket", "k", 900, after)
    # A tz-aware instant that is still the 31st in UTC uses the 31st's key.
    late_in_utc = datetime(2025, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert "%2F20241231%2F" in signer.presign_get("k", 900, now=late_in_utc)

    # The cache stays bounded however long the signer lives.
    for day in range(2, 10):
        signer.presign_get("k", 900, now=datetime(2025, 1, day))
    assert len(signer._day_cache) <= 2


def test_clock_path_rolls_over_at_midnight_utc(boto_session: boto3.session.Session) -> None:
    """now=None reads time.time(); the per-second and per-day caches must follow the clock."""
    setup = Setup("us-east-1", "http://localhost:9000", "auto", "AKIDEXAMPLE", "secret", None)
    signer = signer_for(setup, "my-bucket")
    for instant in (
        datetime(2024, 2, 28, 23, 59, 59, 500000),
        datetime(2024, 2, 28, 23, 59, 59, 900000),  # same second: served from the tick cache
        datetime(2024, 2, 29, 0, 0, 0, 100000),
        datetime(2024, 3, 1, 0, 0, 0),
    ):
        epoch = instant.replace(tzinfo=UTC).timestamp()
        with mock.patch.object(sigv4, "_now", return_value=epoch):
            got = signer.presign_get("photo.jpg", 900)
        assert got == botocore_url(boto_session, setup, "my-bucket", "photo.jpg", 900, instant)
        assert signer._tick.amz_date == instant.strftime("%Y%m%dT%H%M%SZ")


def test_clock_path_remembers_one_seconds_urls_within_a_bound(boto_session: boto3.session.Session) -> None:
    """Within one second the same inputs give the same URL, so it is remembered; other inputs are
    still signed on their own, and the memory of a second is bounded."""
    setup = Setup("us-east-1", "http://localhost:9000", "auto", "AKIDEXAMPLE", "secret", None)
    signer = signer_for(setup, "my-bucket")
    instant = datetime(2024, 5, 1, 12, 0, 0, 250000)
    cases = [("a.pdf", 900, None, None), ("a.pdf", 901, None, None), ("a.pdf", 900, "attachment", None)]
    cases += [("a.pdf", 900, None, "application/pdf"), ("b.pdf", 900, None, None)]
    with mock.patch.object(sigv4, "_now", return_value=instant.replace(tzinfo=UTC).timestamp()):
        for _ in range(2):
            for key, expires, disposition, ctype in cases:
                got = signer.presign_get(
                    key, expires, response_content_disposition=disposition, response_content_type=ctype
                )
                assert got == botocore_url(boto_session, setup, "my-bucket", key, expires, instant, disposition, ctype)
        assert len(signer._tick.urls) == len(cases)
        for i in range(sigv4._TICK_URLS + 10):
            signer.presign_get(f"k{i}", 60)
        assert len(signer._tick.urls) == sigv4._TICK_URLS


def test_default_clock_is_now() -> None:
    signer = signer_for(Setup("eu-west-1", None, "auto", "AKIDEXAMPLE", "secret", None), "my-bucket")
    before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    url = signer.presign_get("k", 900)
    after = datetime.now(UTC).replace(tzinfo=None)
    stamp = datetime.strptime(url.split("X-Amz-Date=")[1][:16], "%Y%m%dT%H%M%SZ")
    assert before <= stamp <= after


def test_url_shapes() -> None:
    """Spot checks that document what botocore picks (the random test proves the bytes)."""

    def url(region: str, endpoint: str | None, style: str, bucket: str = "my-bucket") -> str:
        s = signer_for(Setup(region, endpoint, style, "AKIDEXAMPLE", "secret", None), bucket)
        return s.presign_get("a b/c", 900, now=datetime(2024, 1, 1)).split("?")[0]

    assert url("us-east-1", None, "auto") == "https://my-bucket.s3.amazonaws.com/a%20b/c"
    assert url("eu-west-1", None, "auto") == "https://my-bucket.s3.amazonaws.com/a%20b/c"  # legacy global
    assert url("eu-west-1", None, "virtual") == "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c"
    assert url("eu-west-1", None, "path") == "https://s3.eu-west-1.amazonaws.com/my-bucket/a%20b/c"
    assert url("us-east-1", None, "path") == "https://s3.amazonaws.com/my-bucket/a%20b/c"
    assert url("eu-west-1", None, "auto", "my.bucket") == "https://s3.eu-west-1.amazonaws.com/my.bucket/a%20b/c"
    assert url("cn-north-1", None, "auto") == "https://my-bucket.s3.cn-north-1.amazonaws.com.cn/a%20b/c"
    assert url("eu-west-1", "http://127.0.0.1:5000", "auto") == "http://127.0.0.1:5000/my-bucket/a%20b/c"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"endpoint_url": "http://127.0.0.1:5000", "addressing_style": "virtual"}, "virtual"),
        ({"endpoint_url": "https://minio.example.com/prefix"}, "path prefix"),
        ({"endpoint_url": "https://user:pw@minio.example.com"}, "host"),
        ({"endpoint_url": "https://minio.example.com?x=1"}, "query"),
        ({"endpoint_url": "https://minio.example.com#f"}, "query"),
        ({"endpoint_url": "ftp://minio.example.com"}, "scheme"),
        ({"endpoint_url": "http://[::1]:9000"}, "host"),
        ({"endpoint_url": "http://localhost:0"}, "host"),
        ({"endpoint_url": "http://localhost:080"}, "host"),
        ({"endpoint_url": "http://localhost:70000"}, "port"),
        ({"endpoint_url": "https://s3-accelerate.amazonaws.com"}, "accelerate"),
        ({"bucket": "MyBucket"}, "bucket"),
        ({"bucket": "my_bucket"}, "bucket"),
        ({"bucket": "ab"}, "bucket"),
        ({"bucket": "a..b"}, "bucket"),
        ({"bucket": "192.168.1.1"}, "bucket"),
        ({"bucket": "zone--use1-az4--x-s3"}, "bucket"),
        ({"bucket": "arn:aws:s3:us-east-1:123456789012:accesspoint/ap"}, "bucket"),
        ({"region": "us-iso-east-1"}, "partition"),
        ({"region": "aws-global"}, "partition"),
        ({"region": "EU-WEST-1"}, "partition"),
        ({"endpoint_url": "http://127.0.0.1:5000", "region": "Bad Region"}, "region"),
        ({"addressing_style": "dns"}, "addressing_style"),
        ({"access_key": ""}, "required"),
    ],
)
def test_unsupported_combinations_raise(overrides: dict[str, Any], match: str) -> None:
    kwargs: dict[str, Any] = {
        "access_key": "AKIDEXAMPLE",
        "secret_key": "secret",
        "session_token": None,
        "region": "eu-west-1",
        "endpoint_url": None,
        "bucket": "my-bucket",
        "addressing_style": "auto",
    }
    kwargs.update(overrides)
    with pytest.raises(ValueError, match=match):
        PresignedGetSigner(**kwargs)
