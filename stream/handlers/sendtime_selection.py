"""The creative of a send-time request that asks for one (`select_creative`): selected by
the selection service as a selection request for the same account, campaign and contact
would be at the answered `send_at` (its cooldowns recorded, its decision counted), and
carried in the send-time answer as the selection response's own body. A selection that
fails is an error object with its named reason; the send time stands either way."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from stream.handlers.selection import SelectionService
from stream.wire import codec
from stream.wire.messages import SelectionError, SelectionRequest, SelectionResponse

Selected = SelectionResponse | SelectionError
# Decides (request, time) pairs in one batch: one answer each, in order.
SelectAt = Callable[[Sequence[tuple[SelectionRequest, float]]], Awaitable[list[Selected]]]


def selections_of(service: SelectionService) -> SelectAt:
    """The `SelectAt` of a selection service (the worker's `runtime.selection`)."""

    async def select(pairs: Sequence[tuple[SelectionRequest, float]]) -> list[Selected]:
        # each request under its place as id, so the answers (in no order) find their place
        inner = [replace(r, request_id=str(i), time=t) for i, (r, t) in enumerate(pairs)]
        found: dict[int, Selected] = {}
        for body in await service.decide_inner(inner):
            decoded = codec.decode("selection_response", body)
            if isinstance(decoded, codec.Rejected) or decoded.request_id is None:
                continue
            place = int(decoded.request_id)
            found[place] = replace(decoded, request_id=pairs[place][0].request_id)
        return [found.get(i) or missing(r) for i, (r, _) in enumerate(pairs)]

    return select


def missing(request: SelectionRequest, detail: str = "no selection answer") -> Selected:
    """The error object of a request whose selection got no answer."""
    return SelectionError(
        request.request_id, request.account_id, "internal_error", detail, time.time()
    )
