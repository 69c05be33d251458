"""The SQS adapter against moto's SQS over HTTP: send, long-poll, retry later, delete, dead-letter."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import aioboto3
import pytest

from app.errors import QueueUnavailable
from app.queue import Queue, create_queue, endpoint_of
from app.settings import Settings
from tests.conftest import MotoServer, free_port

SETTINGS = Settings.from_env({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "S3_BUCKET": "q"})


@pytest.fixture
async def queue(moto: MotoServer) -> AsyncIterator[Queue]:
    url = await create_queue(SETTINGS, moto.url, f"test-{uuid.uuid4().hex[:8]}", max_receives=2)
    q = Queue(SETTINGS, url)
    await q.start()
    yield q
    await q.close()


async def test_send_receive_delete(queue: Queue) -> None:
    await queue.send([str(i) for i in range(12)])  # more than one SendMessageBatch
    seen: list[str] = []
    for _ in range(5):
        for message in await queue.receive(10, 1, 30):
            seen.append(message.body)
            await queue.delete(message)
    assert sorted(seen, key=int) == [str(i) for i in range(12)]
    assert await queue.receive(10, 0, 30) == []


async def test_retry_later_redelivers_then_dead_letters(queue: Queue, moto: MotoServer) -> None:
    sent = time.time()
    await queue.send(["42"])
    first = await queue.receive(1, 1, 30)
    assert [m.receive_count for m in first] == [1]
    # SentTimestamp, read as Unix seconds: the queue's clock is this machine's (moto), 1 ms resolution.
    assert first[0].sent_at is not None and sent - 0.01 <= first[0].sent_at <= time.time() + 0.01
    assert await queue.receive(1, 0, 30) == []  # invisible while a worker holds it
    await queue.retry_later(first[0], 0)
    second = await queue.receive(1, 1, 30)
    assert [(m.body, m.receive_count, m.sent_at) for m in second] == [("42", 2, first[0].sent_at)]
    await queue.retry_later(second[0], 0)
    # Received twice (the redrive policy's maxReceiveCount): SQS moves it to the dead-letter queue.
    assert await queue.receive(1, 1, 30) == []
    session = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    async with session.client("sqs", endpoint_url=moto.url) as sqs:
        dead = await sqs.receive_message(QueueUrl=queue.url + "-dlq", WaitTimeSeconds=1)
    assert [m["Body"] for m in dead["Messages"]] == ["42"]


async def test_unreachable_queue_is_queue_unavailable() -> None:
    q = Queue(SETTINGS, f"http://127.0.0.1:{free_port()}/123456789012/nowhere")
    await q.start()
    try:
        with pytest.raises(QueueUnavailable) as raised:
            await q.send(["1"])
        assert raised.value.code == "QUEUE_UNAVAILABLE"
    finally:
        await q.close()


def test_endpoint_of() -> None:
    assert endpoint_of("https://sqs.eu-west-1.amazonaws.com/123456789012/versions") is None
    assert endpoint_of("http://127.0.0.1:9000/123456789012/versions") == "http://127.0.0.1:9000"
