"""Runtime tuning: start-up objects, and what survives the collector's older passes, are kept out of
its full passes while the server runs, and handed back to it at shutdown (and, for the survivors,
once memory has grown enough that the cyclic garbage among them must be freed)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from dataclasses import replace

from app.main import create_app
from app.runtime import SurvivorFreezer, startup_objects_frozen
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
        # A full pass leaves the frozen objects alone (and freezes what it found alive).
        assert gc.get_freeze_count() >= frozen
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


class _Cycle:
    def __init__(self) -> None:
        self.me = self


class _Plain:
    pass


async def _until(done: Callable[[], bool]) -> None:
    """The full pass runs on the event loop (call_soon_threadsafe): let it have its turns."""
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0)


def _in_a_generation(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())  # frozen objects are in none


async def test_survivors_are_frozen_and_their_cyclic_garbage_freed_once_memory_has_grown() -> None:
    memory = [1000]
    freezer = SurvivorFreezer(100, memory=lambda: memory[0])
    gc.disable()  # only the collections below
    try:
        freezer.start()
        try:
            assert freezer.baseline == 1000
            frozen = gc.get_freeze_count()
            alive, garbage, plain = _Cycle(), _Cycle(), _Plain()
            alive_ref, garbage_ref, plain_ref = weakref.ref(alive), weakref.ref(garbage), weakref.ref(plain)
            gc.collect(1)  # they survive a young collection: frozen, out of every later one's walk
            assert gc.get_freeze_count() >= frozen + 3
            assert not _in_a_generation(alive) and not _in_a_generation(garbage)
            del plain
            assert plain_ref() is None  # frozen, but freed by reference counting as ever
            del garbage
            gc.collect()
            assert garbage_ref() is not None  # a frozen cycle: what the full pass is for

            memory[0] = 1900  # grown by less than 100 %: no full pass
            gc.collect(1)
            await _until(lambda: freezer.full_passes > 0)
            assert freezer.full_passes == 0 and garbage_ref() is not None

            memory[0] = 2100
            gc.collect(1)
            await _until(lambda: freezer.full_passes > 0)
            assert freezer.full_passes == 1
            assert garbage_ref() is None  # handed back, collected
            assert alive_ref() is alive and not _in_a_generation(alive)  # alive: frozen again
            assert freezer.baseline == 2100  # the next full pass waits for another doubling
        finally:
            freezer.stop()
    finally:
        gc.enable()
    assert gc.get_freeze_count() == 0


async def test_the_server_can_keep_to_its_start_up_freeze(moto: MotoServer, database_url: str) -> None:
    app = create_app(replace(make_settings(moto, database_url), gc_freeze_survivors=False))
    async with app.router.lifespan_context(app):
        assert app.state.gc_freezer is None
        frozen = gc.get_freeze_count()
        survivor = _Cycle()
        gc.collect(1)
        assert _in_a_generation(survivor) and gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0
