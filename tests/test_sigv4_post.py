"""app.sigv4's POST policy signer must return exactly what botocore's generate_presigned_post returns:
the same form URL, the same fields in the same order, the same policy bytes and signature.

botocore's clock is frozen by patching `get_current_datetime` where the POST presigner (expiration)
and SigV4 (timestamp) read it. Inputs are random but seeded.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
import botocore.auth
import botocore.signers
from botocore.config import Config

from tests.test_sigv4 import (  # noqa: F401 - boto_session is a fixture
    BUCKETS,
    DISPOSITION,
    SEED,
    Setup,
    all_setups,
    boto_session,
    random_now,
    random_text,
    signer_for,
)

CONDITIONS: list[Any] = [
    {"acl": "private"},
    {"acl": "public-read"},
    ["content-length-range", 1, 10485760],
    ["starts-with", "$Content-Type", "image/"],
    {"Content-Type": "image/png"},
    {"success_action_status": "201"},
    {"Content-Disposition": DISPOSITION},
    {"Cache-Control": "max-age=315576000, public"},
    {"x-amz-meta-name": "Résumé 日本語 😀"},
]


def botocore_post(
    session: boto3.session.Session, setup: Setup, bucket: str, key: str, fields: dict[str, str],
    conditions: list[Any], expires_in: int, now: datetime,
) -> tuple[str, dict[str, str]]:  # fmt: skip
    client = session.client(
        "s3",
        region_name=setup.region,
        endpoint_url=setup.endpoint_url,
        aws_access_key_id=setup.access_key,
        aws_secret_access_key=setup.secret_key,
        aws_session_token=setup.session_token,
        config=Config(signature_version="s3v4", s3={"addressing_style": setup.style}),
    )
    naive_utc = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    with (
        mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive_utc),
        mock.patch.object(botocore.signers, "get_current_datetime", return_value=naive_utc),
    ):
        result = client.generate_presigned_post(
            Bucket=bucket, Key=key, Fields=dict(fields), Conditions=list(conditions), ExpiresIn=expires_in
        )
    return result["url"], result["fields"]


def test_post_policies_are_byte_identical_to_botocore(boto_session: boto3.session.Session) -> None:  # noqa: F811
    rng = random.Random(SEED + 1)
    compared = 0
    for setup in all_setups(rng)[::3]:
        for bucket in BUCKETS[:3]:
            signer = signer_for(setup, bucket)
            token = "".join(rng.choice("0123456789abcdef") for _ in range(32))
            name = rng.choice(["${filename}", "cv.pdf", random_text(rng) or "f", "photo é.png"])
            key = f"photos/image/{token}/{name}"
            conditions = rng.sample(CONDITIONS, rng.randint(0, len(CONDITIONS)))
            fields = {k: str(v) for c in conditions if isinstance(c, dict) for k, v in c.items()}
            expires_in = rng.choice([60, 900, 3600, 604800])
            now = random_now(rng)
            expected = botocore_post(boto_session, setup, bucket, key, fields, conditions, expires_in, now)
            before = (dict(fields), list(conditions))
            got = signer.presign_post(key, fields, conditions, expires_in, now=now)
            assert got[0] == expected[0], (setup, bucket)
            assert list(got[1].items()) == list(expected[1].items()), (setup, bucket, key)
            assert (fields, conditions) == before  # the caller's arguments are left alone
            compared += 1
    assert compared >= 50
