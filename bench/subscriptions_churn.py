"""Memory of the API process when subscriptions come and go: ROUNDS times, SUBSCRIPTIONS clients
subscribe (one per WebSocket), get their first event and leave.

    .venv/bin/python bench/subscriptions_churn.py [--subscriptions 5000] [--rounds 4]

With GC_FREEZE_SURVIVORS (the default) what a closed connection leaves as cyclic garbage is frozen
and only freed by a full collection once peak memory has grown by GC_REFREEZE_GROWTH; this shows
the API's RSS after each round and the full collections it made (`uploads_gc_full_passes_total`).
Run it with GC_FREEZE_SURVIVORS=false in the environment for the collector's own policy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import app_env, database, make_bucket, moto_server, uvicorn
from bench.subscriptions import more_files, rss_mb, seed, subscribers_main


def full_passes(base: str) -> float:
    text = httpx.get(base + "/metrics").text
    series = "uploads_gc_full_passes_total "
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(series)), 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    more_files()
    with moto_server() as storage, database("postgres") as database_url:
        make_bucket(storage, "bench")
        rows = asyncio.run(seed(database_url, args.subscriptions))
        env = app_env(storage, "bench", database_url) | {
            "LIVE_SUBSCRIPTIONS_PER_CALLER": "1000000",
            "LIVE_MESSAGE_RATE": "10000",
            "LOG_LEVEL": "warning",
        }
        rounds = []
        with uvicorn("bench.servers:api", env, "/healthz") as (base, server):
            ws_url = base.replace("http", "ws", 1) + "/graphql"
            rounds.append({"round": 0, "api_rss_mb": round(rss_mb(server.pid), 1), "full_passes": full_passes(base)})
            ctx = multiprocessing.get_context("spawn")
            for n in range(1, args.rounds + 1):
                ours, theirs = ctx.Pipe()
                clients = ctx.Process(target=subscribers_main, args=(ws_url, [r for r, _ in rows], 1, theirs))
                clients.start()
                status = ours.recv()
                if status[0] != "subscribed":
                    raise SystemExit(f"the subscribers failed: {status[1]}")
                open_rss = rss_mb(server.pid)
                ours.send("report")
                ours.recv()
                ours.send("stop")
                clients.join(60)
                httpx.get(base + "/healthz")  # the server is answering again: the sockets are closed
                rounds.append(
                    {
                        "round": n,
                        "api_rss_mb_open": round(open_rss, 1),
                        "api_rss_mb_closed": round(rss_mb(server.pid), 1),
                        "full_passes": full_passes(base),
                    }
                )
    print(json.dumps({"subscriptions": args.subscriptions, "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
