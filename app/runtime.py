"""Process-wide runtime tuning done once a server or worker has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
