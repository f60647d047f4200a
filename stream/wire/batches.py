"""Batch envelopes: up to `MAX_ITEMS` selection requests, selection responses or outcome
events of one account in one Kafka message, so the per-message cost of the client, the
broker and the worker is paid once per batch rather than once per item.

- `selection_request_batch.v1` on the requests topic: `{"account_id", "requests": [...]}`,
  each item a `selection_request.v1` object (its `schema` and `account_id` may be left
  out; an `account_id` other than the envelope's is refused for that item).
- `selection_response_batch.v1` on a reply topic: `{"responses": [...]}`, each item a
  `selection_response.v1`. The worker answers the requests of a batch with response
  batches (one per reply topic and step); a single `selection_request.v1` still gets a
  single `selection_response.v1`.
- `event_batch.v1` on the topic of its `kind` (sends, clicks or conversions):
  `{"kind", "account_id", "events": [...]}`, each item that kind's v1 object.

`open_requests` and `open_events` read either form of their topic (a single v1 message
is a batch of one, `batched` False) into the same per-item values `codec.decode` gives,
with the same checks item by item: a bad item is rejected with its own reason and a
detail naming its index, and never spoils the others. The envelope itself (size, JSON,
schema, account, item count, the Kafka key) is checked first; when it fails, nothing in
it is used and the whole message is rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Unpack

import orjson

from stream.wire import codec
from stream.wire import messages as m
from stream.wire.checks import LIMITS, Limits, Rejected, wrong
from stream.wire.encoders import valid_id
from stream.wire.messages import MAX_ID_LENGTH, MAX_TEXT_LENGTH

REQUEST_BATCH = "selection_request_batch.v1"
RESPONSE_BATCH = "selection_response_batch.v1"
EVENT_BATCH = "event_batch.v1"
BATCH_SCHEMAS = (REQUEST_BATCH, RESPONSE_BATCH, EVENT_BATCH)
MAX_ITEMS = 1000  # items per envelope; a sender's batches stay well below (`stream.client`)
MAX_BATCH_BYTES = 1_048_576  # Kafka's default largest message
EventKind = Literal["send", "click", "conversion"]
EVENT_KINDS: tuple[EventKind, ...] = ("send", "click", "conversion")


class Item(NamedTuple):
    """One item of a consumed message: its place in the batch (0 for a single message),
    its decoded value or why not, and its JSON object (None for a single message, whose
    bytes are the message's own). A tuple: one is made per item on the hot path."""

    place: int
    value: Any
    source: dict[str, Any] | None = None

    def raw(self, message: bytes) -> bytes:
        """The item's bytes for a dead letter: its object, or the whole single message."""
        return message if self.source is None else orjson.dumps(self.source)


@dataclass(frozen=True, slots=True)
class Opened:
    """A consumed message's items in order; `batched` False for a single v1 message."""

    items: tuple[Item, ...]
    batched: bool
    account_id: str | None = None


def _parse(raw: bytes | None, limit: int) -> dict[str, Any] | Rejected:
    if not isinstance(raw, bytes | bytearray | memoryview):
        return Rejected("malformed_json", "no value (a tombstone?)")
    if len(raw) > limit:
        return Rejected("oversized", f"{len(raw)} bytes, the limit is {limit}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected("malformed_json", str(exc)[:MAX_TEXT_LENGTH])
    if type(doc) is not dict:
        return Rejected("not_an_object", wrong("message", "an object", doc).detail)
    return doc


def _envelope(
    doc: dict[str, Any], field: str, key: bytes | None
) -> tuple[str, list[Any]] | Rejected:
    """The envelope's account and items, or why the whole batch is refused."""
    account = doc.get("account_id")
    if type(account) is not str or not 0 < len(account) <= MAX_ID_LENGTH:
        return Rejected("invalid_value", "account_id: must be an id of 1 to 200 characters")
    items = doc.get(field)
    if type(items) is not list or not items:
        return Rejected("invalid_value", f"{field}: must be a non-empty array")
    if len(items) > MAX_ITEMS:
        return Rejected("oversized", f"{field}: {len(items)} items, the limit is {MAX_ITEMS}")
    if key is not None and key != account.encode():
        return Rejected("invalid_value", "key: is not the batch's account_id")
    return account, items


def _item(
    kind: m.Kind, account: str | None, index: int, obj: Any, field: str, options: codec.Options
) -> Item:
    path = f"{field}[{index}]"
    if type(obj) is not dict:
        return Item(index, Rejected("not_an_object", f"{path}: must be an object"), None)
    doc = obj  # parsed for this call alone: changed in place (the copy would cost)
    schema = doc.pop("schema", m.SCHEMAS[kind])
    if schema != m.SCHEMAS[kind]:
        detail = f"{path}.schema: must be {m.SCHEMAS[kind]!r}"
        return Item(index, Rejected("schema_mismatch", detail), obj)
    if account is not None and doc.setdefault("account_id", account) != account:
        detail = f"{path}.account_id: is not the batch's account_id"
        return Item(index, Rejected("invalid_value", detail), obj)
    return Item(index, codec.decode_object(kind, doc, options, path), obj)


def _open(
    kind: m.Kind, schema: str, field: str, raw: bytes | None, options: codec.Options
) -> Opened | Rejected:
    limits = options.get("limits", LIMITS)
    single = options.get("max_bytes") or limits.max_bytes_for(kind)
    doc = _parse(raw, max(single, limits.max_batch_bytes))
    name = doc.pop("schema", None) if type(doc) is dict else None
    if raw is not None and len(raw) > single and name != schema:  # only a batch may be
        return Rejected("oversized", f"{len(raw)} bytes, the limit is {single}")
    if isinstance(doc, Rejected):
        return doc
    if name == m.SCHEMAS[kind]:
        return Opened((Item(0, codec.decode_object(kind, doc, options)),), False)
    if name != schema:
        got = repr(name) if name is None or name in m.KIND_OF_SCHEMA else "another value"
        detail = f"schema: must be {m.SCHEMAS[kind]!r} or {schema!r}, got {got}"
        return Rejected("schema_mismatch", detail)
    if schema == EVENT_BATCH and doc.get("kind") != kind:
        return Rejected("schema_mismatch", f"kind: must be {kind!r} on this topic")
    envelope = _envelope(doc, field, options.get("key"))
    if isinstance(envelope, Rejected):
        return envelope
    account, objs = envelope
    each: codec.Options = {k: v for k, v in options.items() if k != "key"}  # type: ignore[assignment]
    items = tuple(_item(kind, account, i, o, field, each) for i, o in enumerate(objs))
    return Opened(items, True, account)


def open_requests(raw: bytes | None, **options: Unpack[codec.Options]) -> Opened | Rejected:
    """A message of the requests topic, single or batched, as `SelectionRequest` items
    (each decoded as `codec.decode("selection_request", ...)` would); the options are
    `codec.decode`'s. Rejected: the whole message (a single request, or the envelope).

    >>> opened = open_requests(
    ...     b'{"schema": "selection_request_batch.v1", "account_id": "acme", "requests":'
    ...     b' [{"request_id": "r1", "campaign_id": "c", "contact_id": "x"},'
    ...     b' {"request_id": "r2", "campaign_id": "c"}]}'
    ... )
    >>> [type(item.value).__name__ for item in opened.items]
    ['SelectionRequest', 'Rejected']
    >>> opened.items[1].value.detail
    'requests[1].contact_id: is required'
    """
    return _open("selection_request", REQUEST_BATCH, "requests", raw, options)


def open_events(
    kind: str, raw: bytes | None, **options: Unpack[codec.Options]
) -> Opened | Rejected:
    """A message of the `kind` topic (send, click or conversion), single or an
    `event_batch.v1` of that kind, as event items; see `open_requests`."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"not an event kind: {kind!r}")
    return _open(kind, EVENT_BATCH, "events", raw, options)


def open_responses(raw: bytes | None) -> list[Any] | Rejected:
    """A message of a reply topic, single or batched, as `SelectionResponse`,
    `SelectionError` or `Rejected` values (one per item)."""
    doc = _parse(raw, MAX_BATCH_BYTES)
    if isinstance(doc, Rejected):
        return doc
    if doc.get("schema") != RESPONSE_BATCH:
        return [codec.decode("selection_response", raw, max_bytes=MAX_BATCH_BYTES)]
    items = doc.get("responses")
    if type(items) is not list or len(items) > MAX_ITEMS:
        return Rejected("invalid_value", "responses: must be an array of at most 1000 items")
    out: list[Any] = []
    for i, obj in enumerate(items):
        item = _item("selection_response", None, i, obj, "responses", {})
        out.append(item.value)
    return out


def request_batch(account_id: str, requests: Sequence[m.SelectionRequest]) -> bytes:
    """A `selection_request_batch.v1` of one account's requests (their own
    `account_id`s are left out: the envelope's is theirs)."""
    items = []
    for r in requests:
        if r.account_id != account_id:
            raise ValueError("a request batch holds the requests of one account")
        item: dict[str, Any] = {
            "request_id": r.request_id,
            "campaign_id": r.campaign_id,
            "contact_id": r.contact_id,
        }
        if r.time is not None:
            item["time"] = r.time
        if r.reply_to is not None:
            item["reply_to"] = r.reply_to
        if r.custom is not None:
            item["custom"] = dict(r.custom)
        items.append(item)
    return orjson.dumps({"schema": REQUEST_BATCH, "account_id": account_id, "requests": items})


def event_batch(kind: str, account_id: str, events: Sequence[Any]) -> bytes:
    """An `event_batch.v1` of one account's events of one kind."""
    items = []
    for e in events:
        if e.kind != kind or e.account_id != account_id:
            raise ValueError("an event batch holds events of one kind and one account")
        body = m.to_dict(e)
        del body["schema"], body["account_id"]
        items.append(body)
    doc = {"schema": EVENT_BATCH, "kind": kind, "account_id": account_id, "events": items}
    return orjson.dumps(doc)


_RESPONSES_HEAD = b'{"schema":"' + RESPONSE_BATCH.encode() + b'","responses":['


def response_batch(bodies: Sequence[bytes]) -> bytes:
    """A `selection_response_batch.v1` of encoded `selection_response.v1` bodies, joined
    as they are (each keeps its own `schema`)."""
    return _RESPONSES_HEAD + b",".join(bodies) + b"]}"


def salvage_request_ids(raw: bytes) -> tuple[list[str | None], str | None, bool]:
    """`(request ids, account id, batched)` of a message that could not be answered as
    asked: its requests' ids (one None when none can be read) and its account, so every
    request still gets an error it can correlate; `batched`: a batch envelope."""
    doc = _parse(raw, MAX_BATCH_BYTES)
    if isinstance(doc, Rejected):
        return [None], None, False
    account = valid_id(doc.get("account_id"))
    items = doc.get("requests") if doc.get("schema") == REQUEST_BATCH else None
    if type(items) is not list or not items:
        return [valid_id(doc.get("request_id"))], account, items is not None
    ids = [valid_id(x.get("request_id")) if type(x) is dict else None for x in items]
    return ids[:MAX_ITEMS], account, True


__all__ = [
    "BATCH_SCHEMAS",
    "EVENT_BATCH",
    "MAX_BATCH_BYTES",
    "MAX_ITEMS",
    "REQUEST_BATCH",
    "RESPONSE_BATCH",
    "Item",
    "Limits",
    "Opened",
    "event_batch",
    "open_events",
    "open_requests",
    "open_responses",
    "request_batch",
    "response_batch",
    "salvage_request_ids",
]
