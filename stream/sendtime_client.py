"""A sender's side of the send-time service (`stream.handlers.sendtime`): the
`SelectionClient` machinery, asking `send_time_request.v1` and reading
`send_time_response.v1`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from stream.adapters.producer import as_settings
from stream.client import SelectionClient, SendTime
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import SendTimeQuery


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
        select_creative: bool = False,
        **options: Any,
    ) -> SendTime:
        """When to send: a `SendTimeAnswer` or a `SendTimeError` (a bounded reason).
        `options` are the request's optional fields (`zone`, `profile_zone`, `launch_id`,
        `sending_hours`, `control_pct`, `control_delay_seconds`). `select_creative`: the
        answer's `selection` also carries the creative to send then."""
        producer = self._started()
        query = SendTimeQuery(
            str(uuid.uuid4()), account_id, campaign_id, contact_id, launch_time,
            window_seconds, **options, reply_to=self._reply_to,
            select_creative=True if select_creative else None,
        )  # fmt: skip
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                future = await self._submit(producer, query)
                return await future  # type: ignore[return-value]
        finally:
            self._pending.pop(query.request_id, None)

    def _resolve(self, raw: bytes | None) -> None:
        self._deliver(codec.decode("send_time_response", raw))
