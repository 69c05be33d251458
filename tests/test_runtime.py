"""Runtime tuning: start-up objects are kept out of the cyclic collector's full passes while the
server runs, and handed back to it at shutdown."""

from __future__ import annotations

import gc
import weakref

from app.main import create_app
from app.runtime import startup_objects_frozen
from tests.conftest import MotoServer, make_settings


async def test_the_server_freezes_its_start_up_objects_while_it_runs(moto: MotoServer, database_url: str) -> None:
    app = create_app(make_settings(moto, database_url))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        # Everything alive at start-up, the schema and the ORM's models included, is frozen:
        # a full collection under load no longer walks it.
        assert frozen > 10_000
        gc.collect()
        assert gc.get_freeze_count() == frozen  # a full pass leaves the frozen objects alone
    assert gc.get_freeze_count() == 0  # given back at shutdown: nothing kept after the app is gone


def test_garbage_present_at_start_up_is_collected_not_frozen() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.disable()  # no automatic pass between the steps below
    try:
        garbage, alive = Node(), Node()
        garbage_ref, alive_ref = weakref.ref(garbage), weakref.ref(alive)
        del garbage  # a reference cycle: garbage only the cyclic collector frees
        assert garbage_ref() is not None
        with startup_objects_frozen():
            assert garbage_ref() is None  # freed before freezing, not kept for the process's life
            assert alive_ref() is alive
        assert gc.get_freeze_count() == 0
    finally:
        gc.enable()
