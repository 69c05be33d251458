"""Loaded by the API process of bench/subscriptions.py (through PYTHONPATH): logs every collection of
Python's cyclic garbage collector that takes 20 ms or more, with its generation and when it ended
(time.monotonic, comparable across processes), so the benchmark can tell a GC pause from its own."""

import gc
import os
import sys
import time

if os.environ.get("BENCH_GC_LOG"):
    _started = [0.0]
    _walked = [0]
    _detail = bool(os.environ.get("BENCH_GC_DETAIL"))

    def _watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            # Counting walks the objects (slow): only when asked, and before the clock starts.
            if _detail:
                _walked[0] = sum(len(gc.get_objects(g)) for g in range(info["generation"] + 1))
                if os.environ.get("BENCH_GC_TYPES") and info["generation"] == 2 and _walked[0] > 100_000:
                    from collections import Counter

                    kinds = Counter(type(o).__qualname__ for g in range(3) for o in gc.get_objects(g))
                    sys.stderr.write(f"GC-TYPES {kinds.most_common(25)}\n")
            _started[0] = time.perf_counter()
            return
        took = (time.perf_counter() - _started[0]) * 1000
        if took >= 20:
            extra = f" walked={_walked[0]} collected={info['collected']}" if _detail else ""
            sys.stderr.write(f"GC-PAUSE gen={info['generation']} ms={took:.1f} at={time.monotonic():.3f}{extra}\n")
            sys.stderr.flush()

    gc.callbacks.append(_watch)
