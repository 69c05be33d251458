"""`records` with 100 private uploads: server time of the query, against what botocore alone would
spend signing the 100 GET URLs.

Run: .venv/bin/python bench/records.py [--db sqlite|postgres] [--runs 30]
Creates 100 private documents through the real flow (presign, POST to a moto server, record_create),
then runs the `records` query `--runs` times in-process over ASGI. Server time is the duration the
app's own ObserveMiddleware logs for the request (ASGI call to last response byte), so the client's
work is not counted. The baseline signs the same 100 keys with botocore's generate_presigned_url.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import app_env, database, make_bucket, moto_server

PDF = b"%PDF-1.4\n" + b"% filler to pass the 1 KiB minimum\n" * 64 + b"%%EOF\n"
PRESIGN = """mutation { attachment_presign_url(options: {model_property: {model_schema_name: "documents",
  property_name: "resume"}, content_type: "application/pdf", file_name: "cv.pdf"}) {
  upload_url upload_url_payload url } }"""
CREATE = """mutation($url: String) { record_create(record: {table: "documents",
  properties: [{name: "title", value: "CV"}, {name: "resume", value: $url}]}) { id } }"""
RECORDS = """{ records(filter: {table: {value: "documents"}}, per_page: 100) { total_entries
  results { id properties resume: property_upload(name: "resume") { url file_name size } } } }"""


class Durations(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ms: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.ms.append(float(record.__dict__["duration_ms"]))


async def gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = (await http.post("/graphql", json={"query": query, "variables": variables or {}})).json()
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data


async def run(env: dict[str, str], runs: int) -> tuple[list[float], list[str]]:
    os.environ.update(env)
    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings.from_env())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http,
        httpx.AsyncClient() as storage,
    ):
        for _ in range(100):
            presigned = (await gql(http, PRESIGN))["attachment_presign_url"]
            fields = dict(presigned["upload_url_payload"])
            posted = await storage.post(
                presigned["upload_url"], data=fields, files={"file": ("cv.pdf", PDF, "application/pdf")}
            )
            assert posted.status_code == 201, posted.text
            await gql(http, CREATE, {"url": presigned["url"]})
        access = logging.getLogger("app.access")
        access.setLevel(logging.INFO)
        durations = Durations()
        for _ in range(5):
            await gql(http, RECORDS)  # warm-up: parser and validation caches, connection pool
        access.addHandler(durations)
        for _ in range(runs):
            page = (await gql(http, RECORDS))["records"]
        access.removeHandler(durations)
        assert page["total_entries"] == 100 and all("X-Amz-Signature" in r["resume"]["url"] for r in page["results"])
        keys = [r["resume"]["url"].split("?")[0].split(f"/{env['S3_BUCKET']}/", 1)[1] for r in page["results"]]
    return durations.ms, keys


def botocore_page_ms(env: dict[str, str], keys: list[str], runs: int) -> float:
    client = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    disposition = "attachment; filename=\"cv.pdf\"; filename*=UTF-8''cv.pdf"
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for key in keys:
            client.generate_presigned_url(
                "get_object",
                Params={"Bucket": env["S3_BUCKET"], "Key": key, "ResponseContentDisposition": disposition},
                ExpiresIn=900,
            )
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with moto_server() as storage, database(args.db) as database_url:
        make_bucket(storage, "bench")
        # Anonymous mode has no owners: only ANONYMOUS_READS=all reads documents (`read: owner`) back
        # and signs their private files.
        env = {**app_env(storage, "bench", database_url), "ANONYMOUS_READS": "all"}
        ms, keys = asyncio.run(run(env, args.runs))
        baseline = botocore_page_ms(env, keys, 5)
    print(f"records, 100 private uploads, {args.db}, {args.runs} runs, server time per query")
    print(f"  median {statistics.median(ms):6.2f} ms   best {min(ms):6.2f} ms   worst {max(ms):6.2f} ms")
    print(f"  baseline: botocore signing the same 100 GET URLs alone: {baseline:6.2f} ms (best of 5)")
    print(f"  target < 15 ms (median): {'met' if statistics.median(ms) < 15 else 'MISSED'}")


if __name__ == "__main__":
    main()
