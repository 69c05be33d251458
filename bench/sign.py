"""Per-URL cost of app.sigv4 against botocore's generate_presigned_url("get_object"), same process.

Run: .venv/bin/python bench/sign.py [--calls 20000] [--repeat 5]
Reports the best of `repeat` timeit runs (least disturbed by the machine), in microseconds per call,
plus what resolving one page of 100 private uploads costs with each. Every call signs a different key:
app.sigv4 remembers the URLs of the current second, so signing one key again in the same second (as a
page asking for `properties` and `property_upload.url` does) costs a lookup; that case is shown apart.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.sigv4 import PresignedGetSigner

CREDS = {"access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
KEY = "uploads/photo/{:032x}/holiday photo (1).jpg"
DISPOSITION = "attachment; filename=\"holiday photo (1).jpg\"; filename*=UTF-8''holiday%20photo%20%281%29.jpg"


def best_us(fn: Callable[[], object], calls: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=calls, repeat=repeat)) / calls * 1e6


def bench(label: str, endpoint: str | None, calls: int, repeat: int) -> None:
    client = boto3.session.Session().client(
        "s3",
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id=CREDS["access_key"],
        aws_secret_access_key=CREDS["secret_key"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "auto"}),
    )
    signer = PresignedGetSigner(
        **CREDS, session_token=None, region="eu-west-1", endpoint_url=endpoint, bucket="my-bucket"
    )
    keys = itertools.cycle([KEY.format(i) for i in range(50_000)])

    def ours() -> str:
        return signer.presign_get(next(keys), 900, response_content_disposition=DISPOSITION)

    def again() -> str:
        return signer.presign_get(KEY.format(0), 900, response_content_disposition=DISPOSITION)

    def theirs() -> str:
        params = {"Bucket": "my-bucket", "Key": next(keys), "ResponseContentDisposition": DISPOSITION}
        return str(client.generate_presigned_url("get_object", Params=params, ExpiresIn=900))

    def page(sign: Callable[[], str]) -> Callable[[], list[str]]:
        return lambda: [sign() for _ in range(100)]

    # Warm up both (botocore's first call loads the model and builds the rule set; the first
    # thousands of calls of either also run slower on this VM): only steady state is measured.
    timeit.timeit(ours, number=calls)
    timeit.timeit(theirs, number=max(calls // 20, 100))
    ours_us = best_us(ours, calls, repeat)
    again_us = best_us(again, calls, repeat)
    theirs_us = best_us(theirs, calls, repeat)
    # 100 URLs = one page of private uploads; a page is short, so take the best of more runs.
    page_ours_ms = best_us(page(ours), 20, repeat) / 1000
    page_theirs_ms = best_us(page(theirs), 5, repeat) / 1000
    print(f"{label}:")
    print(f"  app.sigv4  {ours_us:8.2f} us/URL   100 URLs {page_ours_ms:7.3f} ms")
    print(f"  botocore   {theirs_us:8.2f} us/URL   100 URLs {page_theirs_ms:7.3f} ms")
    print(f"  botocore / ours = {theirs_us / ours_us:.1f}x")
    print(f"  app.sigv4, the same URL again within the second: {again_us:.2f} us")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench("moto/MinIO endpoint, path style", "http://127.0.0.1:5000", args.calls, args.repeat)
    bench("AWS eu-west-1, auto (virtual-hosted, global endpoint)", None, args.calls, args.repeat)


if __name__ == "__main__":
    main()
