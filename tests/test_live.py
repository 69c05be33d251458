"""Live upload status over WebSocket (graphql-transport-ws), against the app served by uvicorn."""

from __future__ import annotations

from app.models import Upload
from tests.conftest import Harness
from tests.gql import RECORD_CREATE
from tests.test_flow import upload_photo
from tests.ws_support import connected, serving, state


async def save_photo(h: Harness) -> str:
    url = await upload_photo(h)
    created = await h.ok(
        RECORD_CREATE, {"table": "photos", "prop": "image", "props": [{"name": "image", "value": url}]}
    )
    return str(created["record_create"]["id"])


async def test_versions_arrive_as_they_are_built(h: Harness) -> None:
    record_id = await save_photo(h)
    services = h.app.state.services
    async with serving(h.app) as url, connected(url) as client:
        await client.init()
        await client.subscribe("1", id=record_id, name="image")
        first = await client.next_event("1")
        assert state(first) == {"thumb": "pending", "medium": "pending", "large": "pending"}
        upload = await Upload.get(record_id=int(record_id))
        await services.versions.process(upload.id)
        events, end = await client.until_done("1")
        assert end == {"id": "1", "type": "complete"}
        assert state(events[-1]) == {"thumb": "ready", "medium": "ready", "large": "ready"}
        print(len(events), [state(e) for e in events])
