"""Process-wide runtime tuning done once a server or worker has started."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from app import metrics

log = logging.getLogger(__name__)


def freeze_startup_objects() -> None:
    """Move everything alive after start-up out of the cyclic garbage collector's reach.

    The schema, the ORM's models, botocore's service models and every imported module are a few
    hundred thousand objects that live as long as the process. Python's full (generation 2)
    collection walks all of them each time it runs, which under load was every ~900 requests and
    took ~100 ms, stalling every request in flight (the presign benchmark's p99). Frozen objects
    are never scanned (nor freed: they are not garbage), so a full collection only walks what the
    process allocated since start-up. What is garbage now is collected first, so none of it is kept.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """`freeze_startup_objects` for as long as the server runs; at shutdown they are handed back
    to the collector, so a process that starts and stops apps (the tests) does not keep them."""
    freeze_startup_objects()
    try:
        yield
    finally:
        gc.unfreeze()


def peak_memory_kb() -> int:
    """The process's peak resident memory (KB on Linux): one system call, where counting the frozen
    objects (gc.get_freeze_count) walks them all, 200 ms at 1.5 million in a server's heap."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class SurvivorFreezer:
    """Freezes what survives the collector's older passes, and gives the frozen objects back to one
    full collection whenever the process's peak memory has grown by `growth_percent` since the last.

    An open subscription is about 280 objects (its WebSocket, uvicorn's and Strawberry's handlers,
    graphql-core's executor, its tasks) that live as long as the client stays, and each ping or event
    replaces a few dozen of them (the coroutines and futures it waits on); at 5000 subscriptions a
    full collection walked 1.4 million objects and stalled every event for 1 to 2 seconds, and the
    waiting coroutines alone made each full collection walk 100 000 to 200 000 objects (100-250 ms).
    Here an object that survives a generation-1 collection is frozen: full collections walk next to
    nothing, young ones still free short-lived cycles, and what is frozen but not cyclic (most of it:
    the waiting coroutines, a closed socket's buffers) is still freed by reference counting.

    The price: an object frozen while alive that later becomes cyclic garbage is not freed while
    frozen. Once the peak memory has grown by `growth_percent` since the last full collection, the
    event loop hands every frozen object back and collects once, which frees that garbage: memory
    stays within `growth_percent` of its peak at that collection, at the cost of that one pause (the
    length every full collection took before) after that much growth instead of every few seconds.
    """

    def __init__(self, growth_percent: int, *, memory: Callable[[], int] = peak_memory_kb) -> None:
        self.growth = growth_percent / 100
        self.memory = memory
        self.baseline = 0  # peak memory right after the last full collection over every object
        self.full_passes = 0  # those full collections, after the start-up one
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pass_due = False

    def start(self) -> None:
        """In the server's event loop, which makes the full passes."""
        self._loop = asyncio.get_running_loop()
        self._freeze_all()
        gc.callbacks.append(self._on_collection)

    def stop(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        self._loop = None
        gc.unfreeze()

    def full_pass(self) -> None:
        """Hand every frozen object back, collect once (one full pause), freeze what is alive."""
        self._pass_due = False
        grown_from = self.baseline
        gc.unfreeze()
        self._freeze_all()
        log.info("a full garbage collection: peak memory %d KB (%d KB after the last one)", self.baseline, grown_from)
        self.full_passes += 1
        metrics.GC_FULL_PASSES.inc()

    def _freeze_all(self) -> None:
        freeze_startup_objects()  # the same collect-then-freeze, over everything alive now
        self.baseline = self.memory()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        # Called by the collector itself, in whichever thread allocated (gc.collect() does nothing
        # here): bookkeeping only, the full pass is the event loop's.
        if phase != "stop" or info["generation"] == 0 or self._pass_due or self._loop is None:
            return
        # Right after a collection of generation 1 or 2 the young generations are empty: this
        # freezes what survived it, and nothing it has not looked at.
        gc.freeze()
        if self.memory() > self.baseline * (1 + self.growth):
            self._pass_due = True
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to pause
                self._loop.call_soon_threadsafe(self.full_pass)


@contextmanager
def long_lived_objects_frozen(growth_percent: int | None) -> Iterator[SurvivorFreezer | None]:
    """While the server runs: start-up objects frozen, and with `growth_percent` (not None) the
    survivors of each generation-1 collection too (`SurvivorFreezer`); everything handed back at
    shutdown."""
    if growth_percent is None:
        with startup_objects_frozen():
            yield None
        return
    freezer = SurvivorFreezer(growth_percent)
    freezer.start()
    try:
        yield freezer
    finally:
        freezer.stop()
