"""Presign throughput: the GraphQL mutation against a bare Starlette endpoint doing the same work.

Run: .venv/bin/python bench/presign.py [--db sqlite|postgres] [--connections 32] [--duration 10]
Needs `wrk` (Debian: apt-get install -y wrk). Starts a moto server, a fresh database and, one after
the other, two single-worker uvicorn processes (uvloop, httptools): the real app (`bench.servers:api`,
logging JSON access lines at INFO like `make run`) and the bare endpoint (`bench.servers:bare`). wrk
loads each from its own process over loopback; the best of `--rounds` runs of each is reported.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import app_env, database, make_bucket, moto_server, uvicorn

MUTATION = """mutation { image_presign_url(options: {model_property: {model_schema_name: "photos",
  property_name: "image"}, content_type: "image/png", file_name: "photo.png"}) {
  upload_url upload_url_payload method key url expires_at max_size content_types } }"""
BARE = {"table": "photos", "property_name": "image", "content_type": "image/png", "file_name": "photo.png"}

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def wrk(url: str, body: str, connections: int, duration: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(body=json.dumps(body)))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale}


def check_once(url: str, body: str) -> None:
    import urllib.request

    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(req).read())
    if "errors" in answer:
        raise SystemExit(f"the request fails: {answer['errors']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    results: dict[str, dict[str, float]] = {}
    with moto_server() as storage, database(args.db) as database_url:
        make_bucket(storage, "bench")
        env = app_env(storage, "bench", database_url)
        env.setdefault("LOG_LEVEL", "INFO")
        cases = [
            ("graphql", "bench.servers:api", "/healthz", "/graphql", json.dumps({"query": MUTATION})),
            ("bare", "bench.servers:bare", "/presign", "/presign", json.dumps(BARE)),
        ]
        for name, factory, probe, path, body in cases:
            with uvicorn(factory, env, probe) as (base, _):
                check_once(base + path, body)
                wrk(base + path, body, args.connections, 2)  # warm-up: caches, JIT-free but pools filled
                runs = [wrk(base + path, body, args.connections, args.duration) for _ in range(args.rounds)]
                results[name] = max(runs, key=lambda r: r["rps"])

    g, b = results["graphql"], results["bare"]
    print(f"presign, {args.db}, {args.connections} connections, {args.duration}s x {args.rounds} rounds (best)")
    for name, r in results.items():
        print(f"  {name:8} {r['rps']:8.0f} req/s   p99 {r['p99_ms']:6.1f} ms")
    ratio = g["rps"] / b["rps"]
    print(f"  graphql / bare throughput: {ratio:.0%}")
    verdict = g["rps"] >= 2500 and g["p99_ms"] < 50 and ratio >= 0.5
    print(f"  targets (>= 2500 req/s, p99 < 50 ms, >= 50% of bare): {'met' if verdict else 'MISSED'}")


if __name__ == "__main__":
    main()
