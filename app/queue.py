"""The job queue adapter: SQS through aioboto3 (AWS, or any server speaking the protocol, e.g. moto).

Nothing here knows what a job means; bodies are strings. SDK errors become `QueueUnavailable`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.errors import QueueUnavailable
from app.settings import Settings
from app.storage.s3 import aws_session

log = logging.getLogger(__name__)

BATCH = 10  # SQS's limit per SendMessageBatch
MAX_VISIBILITY = 43200  # SQS's limit: 12 hours
_ERRORS = (TimeoutError, ClientError, BotoCoreError, OSError)


@dataclass(frozen=True)
class Message:
    body: str
    receipt: str
    receive_count: int
    # When the queue accepted the message (SQS's SentTimestamp, the queue server's clock), in Unix
    # seconds; None when the server did not say. A redelivered message keeps its first send time.
    sent_at: float | None = None


def _sent_at(attributes: dict[str, str]) -> float | None:
    raw = attributes.get("SentTimestamp")
    try:
        return int(raw) / 1000 if raw is not None else None
    except ValueError:
        return None


def endpoint_of(queue_url: str) -> str | None:
    """AWS queue URLs need no endpoint override; any other server (moto, ElasticMQ) is its own endpoint."""
    parts = urlsplit(queue_url)
    if parts.hostname and parts.hostname.endswith(".amazonaws.com"):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _translate(exc: Exception, action: str) -> QueueUnavailable:
    log.warning("queue %s failed: %r", action, exc)
    return QueueUnavailable(f"the job queue is unavailable ({action}); try again shortly")


# Fail fast: a save must not hang on a dead queue (the reconciler catches up), and the worker
# loop retries by itself.
_CONFIG = Config(connect_timeout=3, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})


class Queue:
    """One SQS queue; one long-lived client per process."""

    def __init__(self, settings: Settings, queue_url: str) -> None:
        self.settings = settings
        self.url = queue_url
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        self._client = await self._stack.enter_async_context(
            aws_session(self.settings).client("sqs", endpoint_url=endpoint_of(self.url), config=_CONFIG)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("Queue.start() was not awaited")
        return self._client

    async def send(self, bodies: Sequence[str]) -> None:
        for start in range(0, len(bodies), BATCH):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + BATCH])]
            try:
                r = await self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            except _ERRORS as exc:
                raise _translate(exc, "send") from exc
            if r.get("Failed"):
                raise QueueUnavailable(f"the job queue refused {len(r['Failed'])} message(s): {r['Failed'][0]}")

    async def receive(self, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[Message]:
        """Long-poll for up to `max_messages`; each stays invisible to others for `visibility_timeout`."""
        try:
            r = await self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max(1, min(max_messages, BATCH)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=min(visibility_timeout, MAX_VISIBILITY),
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        except _ERRORS as exc:
            raise _translate(exc, "receive") from exc
        return [
            Message(
                body=m["Body"],
                receipt=m["ReceiptHandle"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                sent_at=_sent_at(m.get("Attributes", {})),
            )
            for m in r.get("Messages", [])
        ]

    async def delete(self, message: Message) -> None:
        try:
            await self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt)
        except _ERRORS as exc:
            raise _translate(exc, "delete") from exc

    async def retry_later(self, message: Message, seconds: int) -> None:
        """Make the message visible again after `seconds` (0: at once): SQS's retry with backoff."""
        try:
            await self.client.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message.receipt, VisibilityTimeout=min(seconds, MAX_VISIBILITY)
            )
        except _ERRORS as exc:
            raise _translate(exc, "change visibility") from exc

    async def ping(self) -> None:
        try:
            await self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        except _ERRORS as exc:
            raise _translate(exc, "ping") from exc


async def create_queue(settings: Settings, endpoint_url: str | None, name: str, *, max_receives: int = 10) -> str:
    """Create `name` and its dead-letter queue `name-dlq` (after `max_receives` receives a message
    moves there); return the queue URL. For the embedded run and the tests; idempotent."""
    async with aws_session(settings).client("sqs", endpoint_url=endpoint_url, config=_CONFIG) as sqs:
        try:
            dlq_url = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
            dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))["Attributes"][
                "QueueArn"
            ]
            redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})
            r = await sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})
        except _ERRORS as exc:
            raise _translate(exc, "create") from exc
        return str(r["QueueUrl"])
