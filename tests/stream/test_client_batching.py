"""`SelectionClient`'s batching without a broker: requests of one account leave as one
`selection_request_batch.v1` when the batch is full or the linger is over, single ones
with `batch_size=1`; answers are read from single and batched responses alike."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from stream.client import SelectionClient
from stream.wire import batches
from stream.wire.batches import Opened, open_requests
from stream.wire.messages import SelectionError, SelectionResponse, encode


class FakeProducer:
    """Records what is sent; deliveries succeed, or fail with `fail`."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = fail

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail is not None:
            delivery.set_exception(self.fail)
        else:
            delivery.set_result(None)
        return delivery

    async def stop(self) -> None:
        pass


async def started(batch_size: int = 100, linger_ms: float = 2.0, **kw: Any) -> SelectionClient:
    client = SelectionClient("127.0.0.1:1", batch_size=batch_size, linger_ms=linger_ms)
    client._producer = FakeProducer(**kw)  # type: ignore[assignment]
    client._reader = asyncio.ensure_future(asyncio.sleep(3600))
    return client


def requests_sent(client: SelectionClient) -> list[list[Any]]:
    out = []
    for _, key, raw in client._producer.sent:  # type: ignore[union-attr]
        opened = open_requests(raw, key=key)
        assert isinstance(opened, Opened)
        out.append([item.value for item in opened.items])
    return out


def answer(request_id: str, account: str = "a") -> SelectionResponse:
    return SelectionResponse(
        request_id, account, "k", "c1", "automated", "thompson_single_step", "scored", "none",
        0.5, 1, 9.0,
    )  # fmt: skip


async def test_requests_of_one_account_leave_as_one_batch_after_the_linger() -> None:
    client = await started(linger_ms=20.0)
    tasks = [asyncio.ensure_future(client.select("a", "k", f"u{i}")) for i in range(5)]
    tasks.append(asyncio.ensure_future(client.select("b", "k", "v")))
    await asyncio.sleep(0.005)
    assert client._producer.sent == []  # type: ignore[union-attr]
    await asyncio.sleep(0.05)
    sent = requests_sent(client)
    assert sorted(len(batch) for batch in sent) == [1, 5]
    assert all(len({r.account_id for r in batch}) == 1 for batch in sent)
    assert all(
        orjson.loads(v)["schema"] == batches.REQUEST_BATCH for _, _, v in client._producer.sent
    )  # type: ignore[union-attr]
    ids = [r.request_id for batch in sent for r in batch if r.account_id == "a"]
    client._resolve(batches.response_batch([encode(answer(i)) for i in ids]))
    b_id = next(r.request_id for batch in sent for r in batch if r.account_id == "b")
    client._resolve(encode(SelectionError(b_id, "b", "unknown_campaign", "no", 9.0)))
    results = await asyncio.gather(*tasks)
    assert [r.request_id for r in results] == [*ids, b_id]
    assert isinstance(results[-1], SelectionError)
    assert (client.pending, client.late_replies, client.unreadable_replies) == (0, 0, 0)
    await client.stop()


async def test_a_full_batch_leaves_at_once() -> None:
    client = await started(batch_size=3, linger_ms=10_000.0)
    tasks = [asyncio.ensure_future(client.select("a", "k", f"u{i}")) for i in range(7)]
    await asyncio.sleep(0.01)
    assert [len(b) for b in requests_sent(client)] == [3, 3]
    await client.flush()
    assert [len(b) for b in requests_sent(client)] == [3, 3, 1]
    await client.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)  # stopped unanswered


async def test_batch_size_one_sends_single_requests() -> None:
    client = await started(batch_size=1)
    task = asyncio.ensure_future(client.select("a", "k", "u"))
    await asyncio.sleep(0.01)
    ((_, key, raw),) = client._producer.sent  # type: ignore[union-attr]
    assert key == b"a" and orjson.loads(raw)["schema"] == "selection_request.v1"
    client._resolve(encode(answer(orjson.loads(raw)["request_id"])))
    assert isinstance(await task, SelectionResponse)
    await client.stop()


async def test_select_many_sends_its_rest_without_waiting_for_the_linger() -> None:
    client = await started(batch_size=4, linger_ms=10_000.0)
    many = asyncio.ensure_future(
        client.select_many([("a", "k", f"u{i}") for i in range(6)], timeout=5.0)
    )
    await asyncio.sleep(0.01)
    sent = requests_sent(client)
    assert [len(b) for b in sent] == [4, 2]
    ids = [r.request_id for b in sent for r in b]
    client._resolve(batches.response_batch([encode(answer(i)) for i in reversed(ids)]))
    assert [a.request_id for a in await many] == ids  # type: ignore[union-attr]
    await client.stop()


async def test_an_undelivered_batch_fails_each_of_its_requests() -> None:
    client = await started(linger_ms=1.0, fail=RuntimeError("broker"))
    tasks = [asyncio.ensure_future(client.select("a", "k", f"u{i}")) for i in range(3)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    await client.stop()


def test_batch_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        SelectionClient("127.0.0.1:1", batch_size=0)
    with pytest.raises(ValueError):
        SelectionClient("127.0.0.1:1", batch_size=batches.MAX_ITEMS + 1)
