"""A sender's side of the service: ask for selections and publish outcome events.

`SelectionClient` publishes `selection_request.v1` messages and matches each
`selection_response.v1` to its request by `request_id`. It reads the responses topic
without a consumer group: it assigns itself every partition and starts at their end
before the first request leaves, so it never misses its own answers and never takes
partitions from another sender. Replies nobody waits for (late, or another sender's)
are dropped and counted.

Requests leave in batches by default: those of one account queued within `linger_ms`
(2 ms) go out as one `selection_request_batch.v1` of up to `batch_size` (100) requests,
and are answered with `selection_response_batch.v1` messages, which the client reads
like single answers. `batch_size=1` sends every request as a `selection_request.v1` of
its own, as senders without this client do.

>>> async def main() -> None:  # doctest: +SKIP
...     async with SelectionClient("127.0.0.1:9092") as client:
...         answer = await client.select("acme-lending", "welcome-series", "contact-1")
...         print(answer.creative_id)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable, Sequence
from functools import partial
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.adapters.kafka_config import kafka_config
from stream.adapters.producer import as_settings, open_producer, publish_batched
from stream.settings import Settings
from stream.wire import codec
from stream.wire.batches import MAX_ITEMS, open_responses, request_batch
from stream.wire.messages import (
    ClickEvent,
    ConversionEvent,
    SelectionError,
    SelectionRequest,
    SelectionResponse,
    SendEvent,
    SendTimeAnswer,
    SendTimeError,
    SendTimeQuery,
    encode,
)

Answer = SelectionResponse | SelectionError
SendTime = SendTimeAnswer | SendTimeError
# (account_id, campaign_id, contact_id) or with a fourth item, the decision time.
RequestTuple = tuple[str, str, str] | tuple[str, str, str, float | None]
Event = SendEvent | ClickEvent | ConversionEvent
_POLL_MS = 100


class SelectionClient:
    """Request selections over Kafka; use `async with` or `start()` / `stop()`.

    `responses_topic` (default: the service's responses topic, prefixed): when it is
    another topic, requests carry it as `reply_to` and the worker answers there.
    `timeout` (seconds) is the default for `select` and `select_many`. `batch_size`
    (1 to 1,000) and `linger_ms`: a batch of one account's requests leaves when it is
    full or `linger_ms` after its first request was queued.
    """

    def __init__(
        self,
        settings: Settings | str,
        *,
        responses_topic: str | None = None,
        timeout: float = 5.0,
        batch_size: int = 100,
        linger_ms: float = 2.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_ITEMS or linger_ms < 0:
            raise ValueError(f"batch_size must be 1 to {MAX_ITEMS} and linger_ms >= 0")
        self.settings = as_settings(settings)
        self.batch_size, self.linger_ms = batch_size, linger_ms
        self.requests_topic = self.settings.topic("selection-requests")
        default_responses = self.settings.topic("selection-responses")
        self.responses_topic = responses_topic or default_responses
        self._reply_to = None if self.responses_topic == default_responses else responses_topic
        self.timeout = timeout
        self.late_replies = 0  # replies with no request waiting: late, or not ours
        self.unreadable_replies = 0  # replies the codec rejected
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queued: dict[str, list[tuple[SelectionRequest, asyncio.Future[Answer]]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Requests sent and not answered, timed out or cancelled yet."""
        return len(self._pending)

    async def start(self) -> None:
        """Connect, and position on the end of every responses partition before returning,
        so every answer to a request sent after this is read."""
        if self._producer is not None:
            raise RuntimeError("the client is already started")
        config = kafka_config(self.settings)
        producer = AIOKafkaProducer(**config, acks="all", linger_ms=1, enable_idempotence=True)
        consumer = AIOKafkaConsumer(
            **config, group_id=None, enable_auto_commit=False, auto_offset_reset="latest"
        )
        self._producer, self._consumer = producer, consumer
        try:
            await producer.start()
            await consumer.start()
            numbers = await producer.partitions_for(self.responses_topic)
            partitions = [TopicPartition(self.responses_topic, p) for p in sorted(numbers)]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for partition in partitions:  # resolves the end offsets now, not at first fetch
                await consumer.position(partition)
        except BaseException:
            await self.stop()
            raise
        self._reader = asyncio.create_task(self._read_replies(), name="selection-replies")

    async def stop(self) -> None:
        """Stop reading and disconnect; requests still waiting fail with `CancelledError`."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queued.clear()
        for task in list(self._flushes):
            task.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> SelectionClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def select(
        self,
        account_id: str,
        campaign_id: str,
        contact_id: str,
        *,
        time: float | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """The service's answer for one contact: a `SelectionResponse` (a creative) or a
        `SelectionError` (a bounded reason). Raises `asyncio.TimeoutError` when no answer
        comes within `timeout` seconds; a reply after that is dropped and counted."""
        producer = self._started()
        request = self._request(account_id, campaign_id, contact_id, time)
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                future = await self._submit(producer, request)
                return await future
        finally:
            self._pending.pop(request.request_id, None)

    async def select_many(
        self,
        requests: Iterable[RequestTuple],
        timeout: float | None = None,
        *,
        return_exceptions: bool = False,
    ) -> list[Answer | BaseException]:
        """Publish every request, then await every answer, in the order of `requests`.

        As with `asyncio.gather`: when an answer does not come within `timeout` seconds
        of the call, `asyncio.TimeoutError` is raised, unless `return_exceptions`, where
        that answer's place holds the exception. Unanswered requests are forgotten.
        """
        producer = self._started()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        futures: list[asyncio.Future[Answer]] = []
        request_ids: list[str] = []
        try:
            for item in requests:
                request = self._request(*item)
                request_ids.append(request.request_id)
                futures.append(await self._submit(producer, request))
            await self.flush()
            if futures:
                await asyncio.wait(futures, timeout=max(0.0, deadline - loop.time()))
            return [_outcome(f, return_exceptions) for f in futures]
        finally:
            for request_id, future in zip(request_ids, futures, strict=True):
                self._pending.pop(request_id, None)
                future.cancel()  # a no-op when answered

    async def publish_events(self, events: Iterable[Event], batch_size: int = 100) -> int:
        """Publish sends, clicks and conversions to their topics, keyed by account, in
        `event_batch.v1` messages of up to `batch_size` events of one kind and account
        (single v1 messages when it is 1); returns how many events, once all are stored."""
        return await publish_batched(self._started(), self.settings, list(events), batch_size)

    def _request(
        self, account_id: str, campaign_id: str, contact_id: str, at: float | None = None
    ) -> SelectionRequest:
        request_id = str(uuid.uuid4())
        return SelectionRequest(request_id, account_id, campaign_id, contact_id, at, self._reply_to)

    async def _submit(
        self, producer: AIOKafkaProducer, request: SelectionRequest | SendTimeQuery
    ) -> asyncio.Future[Answer]:
        """Register the request, then queue it; the future gets its answer (or the
        delivery error when the request could not be published)."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[request.request_id] = answer
        if self.batch_size == 1:
            raw, key = encode(request), request.account_id.encode()
            delivery = await producer.send(self.requests_topic, raw, key=key)
            delivery.add_done_callback(lambda d: _fail_if_undelivered(d, answer))
            return answer
        queue = self._queued.setdefault(request.account_id, [])
        assert isinstance(request, SelectionRequest)  # other clients send one per message
        queue.append((request, answer))
        if len(queue) >= self.batch_size:
            await self._send_batch(producer, request.account_id)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self.linger_ms / 1e3, self._flush_soon
            )
        return answer

    async def flush(self) -> None:
        """Send every queued request now (they leave within `linger_ms` otherwise)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        producer = self._producer
        for account_id in list(self._queued):
            if producer is not None:
                await self._send_batch(producer, account_id)

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send_batch(self, producer: AIOKafkaProducer, account_id: str) -> None:
        queued = self._queued.pop(account_id, [])
        if not queued:
            return
        raw = request_batch(account_id, [request for request, _ in queued])
        try:
            delivery = await producer.send(self.requests_topic, raw, key=account_id.encode())
        except Exception as exc:
            for _, answer in queued:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for _, answer in queued:
            delivery.add_done_callback(partial(_fail_if_undelivered, answer=answer))

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None or self._reader is None:
            raise RuntimeError("the client is not started: use `async with` or start()")
        if self._reader.done():  # the reader died: answers would never arrive
            self._reader.result()
        return self._producer

    async def _read_replies(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=_POLL_MS)
            for records in batches.values():
                for record in records:
                    self._resolve(record.value)

    def _resolve(self, raw: bytes | None) -> None:
        answers = open_responses(raw)  # single, or a selection_response_batch.v1
        if isinstance(answers, codec.Rejected):
            self.unreadable_replies += 1
            return
        for answer in answers:
            self._deliver(answer)

    def _deliver(self, answer: Answer | SendTime | codec.Rejected) -> None:
        if isinstance(answer, codec.Rejected):
            self.unreadable_replies += 1
            return
        future = None if answer.request_id is None else self._pending.pop(answer.request_id, None)
        if future is None or future.done():
            self.late_replies += 1
        else:
            future.set_result(answer)  # type: ignore[arg-type]  # a SendTimeClient's: SendTime


class SendTimeClient(SelectionClient):
    """Ask for send times over Kafka: `send_time_request.v1` on `send-time-requests`,
    answers read from `send-time-responses` (or `responses_topic`, sent as `reply_to`).

    >>> async def main() -> None:  # doctest: +SKIP
    ...     async with SendTimeClient("127.0.0.1:9092") as client:
    ...         answer = await client.send_time("acme", "news", "ct-1", 1773064800.0, 86400)
    ...         print(answer.send_at, answer.slot, answer.reason)
    """

    def __init__(
        self, settings: Settings | str, *, responses_topic: str | None = None, timeout: float = 5.0
    ) -> None:
        default = as_settings(settings).topic("send-time-responses")
        super().__init__(  # one message per request: the send-time agent reads no batches
            settings, responses_topic=responses_topic or default, timeout=timeout, batch_size=1
        )
        self.requests_topic = self.settings.topic("send-time-requests")
        self._reply_to = None if self.responses_topic == default else self.responses_topic

    async def send_time(
        self,
        account_id: str,
        campaign_id: str,
        contact_id: str,
        launch_time: float,
        window_seconds: float,
        *,
        timeout: float | None = None,
        **options: Any,
    ) -> SendTime:
        """When to send: a `SendTimeAnswer` or a `SendTimeError` (a bounded reason).
        `options` are the request's optional fields (`zone`, `profile_zone`, `launch_id`,
        `sending_hours`, `control_pct`, `control_delay_seconds`)."""
        producer = self._started()
        query = SendTimeQuery(
            str(uuid.uuid4()), account_id, campaign_id, contact_id, launch_time,
            window_seconds, **options, reply_to=self._reply_to,
        )  # fmt: skip
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                future = await self._submit(producer, query)
                return await future  # type: ignore[return-value]
        finally:
            self._pending.pop(query.request_id, None)

    def _resolve(self, raw: bytes | None) -> None:
        self._deliver(codec.decode("send_time_response", raw))


def _fail_if_undelivered(delivery: asyncio.Future[Any], answer: asyncio.Future[Answer]) -> None:
    if not delivery.cancelled() and delivery.exception() is not None and not answer.done():
        answer.set_exception(delivery.exception())  # type: ignore[arg-type]


def _outcome(future: asyncio.Future[Answer], return_exceptions: bool) -> Answer | BaseException:
    error: BaseException | None
    if not future.done():
        error = TimeoutError("no selection response within the timeout")
    elif future.cancelled():
        error = asyncio.CancelledError("the client was stopped")
    else:
        error = future.exception()
        if error is None:
            return future.result()
    if return_exceptions:
        return error
    raise error


async def publish_events(
    settings: Settings | str, events: Sequence[Event], batch_size: int = 100
) -> int:
    """Publish outcome events with a producer of their own, batched as
    `SelectionClient.publish_events` does (which reuses a client's producer)."""
    resolved = as_settings(settings)
    async with open_producer(resolved) as producer:
        return await publish_batched(producer, resolved, events, batch_size)
