"""Loaded by the API process of bench/subscriptions.py (through PYTHONPATH): logs every collection of
Python's cyclic garbage collector that takes 20 ms or more, with its generation and when it ended
(time.monotonic, comparable across processes), so the benchmark can tell a GC pause from its own."""

import gc
import os
import sys
import time

if os.environ.get("BENCH_GC_LOG"):
    _started = [0.0]

    def _watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
            return
        took = (time.perf_counter() - _started[0]) * 1000
        if took >= 20:
            sys.stderr.write(f"GC-PAUSE gen={info['generation']} ms={took:.1f} at={time.monotonic():.3f}\n")
            sys.stderr.flush()

    gc.callbacks.append(_watch)
