"""The events of the stream: what a customer just did, as versioned, validated pydantic models.

Six types, told apart by ``type``; every event carries ``event_id`` (the idempotency key: a
redelivered or resent event has the same id and changes nothing twice), ``version`` (1; an
event of a version this code does not know is refused, never guessed at), ``customer_id`` and
``ts`` (naive China time; an aware time is converted to it):

====================  =======================================================================
``transaction``       ``amount`` (CNY, > 0), ``category`` (消费类别: 餐饮, 家装 ...), optional
                      ``channel`` (POS, online, QR), ``merchant_id``, ``mcc``, ``city``
``login``             optional ``channel`` (how: app, web ...)
``page_view``         ``page`` (an app page: wealth_fund, instalment ...)
``search``            ``query`` (1–200 characters)
``transfer_failure``  optional ``amount`` (≥ 0) and ``reason``
``response``          ``response_type`` (delivered ... complained, ignored), optional
                      ``decision_id``, ``offer_id``, ``value``
====================  =======================================================================

Values are checked against the data dictionary (:mod:`qianmian.data.schema`): a category,
channel, MCC or page the bank's tables would refuse is refused here too, with a message naming
the field, the reason and the value.

>>> event = parse_event('{"type": "transaction", "event_id": "t-1", "customer_id": 7, '
...                     '"ts": "2026-11-11T12:30:00Z", "amount": 5000, "category": "家装"}')
>>> event.ts, event.amount
(datetime.datetime(2026, 11, 11, 20, 30), 5000.0)
>>> event_to_online(event)[0]
'transactions'
>>> parse_event({"type": "transaction", "event_id": "t-2", "customer_id": 7,
...              "ts": "2026-11-11 20:30", "amount": -5, "category": "家装"})
Traceback (most recent call last):
...
qianmian.errors.ValidationError: event transaction: 'amount' must be greater than 0; got -5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar, Literal, TypeAlias, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
)
from pydantic import ValidationError as PydanticValidationError

from qianmian.data.schema import table as schema_table
from qianmian.data.schema.vocab import APP_PAGES, CATEGORIES, TXN_CHANNELS
from qianmian.decide.feedback import RESPONSE_OUTCOMES
from qianmian.errors import ValidationError
from qianmian.features.online.updates import EventSource

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "BaseEvent",
    "Event",
    "EventError",
    "LoginEvent",
    "PageViewEvent",
    "ResponseEvent",
    "SearchEvent",
    "TransactionEvent",
    "TransferFailureEvent",
    "event_context",
    "event_errors",
    "event_to_json",
    "event_to_online",
    "parse_event",
]

_CHINA = timezone(timedelta(hours=8))
_MAX_AMOUNT = schema_table("transactions").field("amount").max  # the dictionary's ceiling
_MCC_CODES: tuple[str, ...] = schema_table("transactions").field("mcc").enum or ()
_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
_MAX_GOT = 60  # characters of an offending value echoed in a message


def _china_time(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(_CHINA).replace(tzinfo=None)


def _one_of(values: tuple[str, ...], what: str) -> AfterValidator:
    """Refuse a value outside ``values``, listing them."""

    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"must be {what}: one of {', '.join(values)}")
        return value

    return AfterValidator(check)


def _enum(values: tuple[str, ...]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(values)})


EventId = Annotated[str, Field(pattern=_ID_PATTERN, description="Idempotency key")]
ChinaTime = Annotated[datetime, AfterValidator(_china_time)]
Amount = Annotated[float, Field(strict=True, allow_inf_nan=False, description="CNY")]
Category = Annotated[
    str, _one_of(CATEGORIES.values, "a spending category"), _enum(CATEGORIES.values)
]
TxnChannel = Annotated[
    str, _one_of(TXN_CHANNELS.values, "a payment channel"), _enum(TXN_CHANNELS.values)
]
Mcc = Annotated[
    str, _one_of(_MCC_CODES, "a merchant category code of the data dictionary"), _enum(_MCC_CODES)
]
Page = Annotated[str, _one_of(APP_PAGES.values, "an app page"), _enum(APP_PAGES.values)]
ResponseType = Annotated[
    str, _one_of(RESPONSE_OUTCOMES, "a response type"), _enum(RESPONSE_OUTCOMES)
]


def _type_required(schema: dict[str, Any]) -> None:
    """``type`` has a default in Python but is required in JSON (it tells the events apart)."""
    if "type" in schema.get("properties", {}):
        schema["required"] = ["type", *schema.get("required", [])]


class BaseEvent(BaseModel):
    """What every event carries; a subclass per ``type`` adds its own fields."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, json_schema_extra=_type_required
    )

    #: The versions of this event type that this code reads.
    VERSIONS: ClassVar[tuple[int, ...]] = (1,)

    event_id: EventId
    version: int = Field(1, strict=True, description="Schema version of the event")
    customer_id: int = Field(gt=0, strict=True, description="Unified customer id")
    ts: ChinaTime = Field(description="When it happened (China time, or with an offset)")

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version not in cls.VERSIONS:
            read = ", ".join(map(str, cls.VERSIONS))
            raise ValueError(
                f"must be a version this qianmian reads ({read}); upgrade qianmian to read newer "
                "events"
            )
        return version


class TransactionEvent(BaseEvent):
    """A card payment (a row of the ``transactions`` table, as it happens)."""

    type: Literal["transaction"] = "transaction"
    amount: Amount = Field(gt=0, le=_MAX_AMOUNT)
    category: Category
    channel: TxnChannel | None = None
    merchant_id: int | None = Field(None, gt=0, strict=True)
    mcc: Mcc | None = None
    city: str | None = Field(None, min_length=1, max_length=64)


class LoginEvent(BaseEvent):
    """The customer logged in to the app (or web banking)."""

    type: Literal["login"] = "login"
    channel: str | None = Field(None, min_length=1, max_length=32)


class PageViewEvent(BaseEvent):
    """The customer opened an app page."""

    type: Literal["page_view"] = "page_view"
    page: Page


class SearchEvent(BaseEvent):
    """The customer searched in the app."""

    type: Literal["search"] = "search"
    query: str = Field(min_length=1, max_length=200)


class TransferFailureEvent(BaseEvent):
    """A transfer the customer tried failed (over the limit, insufficient funds ...)."""

    type: Literal["transfer_failure"] = "transfer_failure"
    amount: Amount | None = Field(None, ge=0, le=_MAX_AMOUNT)
    reason: str | None = Field(None, min_length=1, max_length=200)


class ResponseEvent(BaseEvent):
    """What a customer did with an offer (delivered, clicked, applied, complained ...)."""

    type: Literal["response"] = "response"
    decision_id: str | None = Field(None, min_length=1, max_length=128)
    offer_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    response_type: ResponseType
    value: Amount | None = Field(None, ge=0)


Event: TypeAlias = Annotated[
    TransactionEvent
    | LoginEvent
    | PageViewEvent
    | SearchEvent
    | TransferFailureEvent
    | ResponseEvent,
    Field(discriminator="type"),
]
#: Validates one event (``validate_python``, ``validate_json``); its JSON schema is the API's.
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
#: The event types, as ``type`` names them.
EVENT_TYPES: tuple[str, ...] = tuple(
    m.model_fields["type"].default for m in get_args(get_args(Event)[0])
)


# -- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventError:
    """One problem of an event: which (``index`` in a batch), its ``type``, the field, why."""

    index: int | None
    event_type: str | None
    field: str | None
    reason: str


_TIME_HINT = "a time like 2026-11-11T20:15:00 (China time, or with an offset such as +08:00)"
_PATTERNS = {
    "event_id": "1 to 128 letters, digits or _ . : -",
    "offer_id": "1 to 64 letters, digits or _ . : -",
}
_REASONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda c: "is required",
    "greater_than": lambda c: f"must be greater than {_number(c['gt'])}",
    "greater_than_equal": lambda c: f"must be at least {_number(c['ge'])}",
    "less_than_equal": lambda c: f"must be at most {_number(c['le'])}",
    "finite_number": lambda c: "must be a finite number",
    "int_type": lambda c: "must be an integer",
    "int_parsing": lambda c: "must be an integer",
    "int_from_float": lambda c: "must be an integer",
    "float_type": lambda c: "must be a number",
    "float_parsing": lambda c: "must be a number",
    "string_type": lambda c: "must be text",
    "string_too_short": lambda c: f"must be at least {c['min_length']} character(s) long",
    "string_too_long": lambda c: f"must be at most {c['max_length']} characters long",
    "datetime_type": lambda c: f"must be {_TIME_HINT}",
    "datetime_parsing": lambda c: f"must be {_TIME_HINT}",
    "datetime_from_date_parsing": lambda c: f"must be {_TIME_HINT}",
    "union_tag_invalid": lambda c: f"must be one of {', '.join(EVENT_TYPES)}",
    "union_tag_not_found": lambda c: f"is required: one of {', '.join(EVENT_TYPES)}",
    "model_attributes_type": lambda c: "must be a JSON object (one event)",
    "dict_type": lambda c: "must be a JSON object (one event)",
    "model_type": lambda c: "must be a JSON object (one event)",
    "json_invalid": lambda c: f"is not valid JSON ({c.get('error', 'cannot be parsed')})",
}
_NO_GOT = {"missing", "union_tag_not_found", "json_invalid", "extra_forbidden"}


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:,.0f}"
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def _reason(error: Mapping[str, Any], field: str | None, event_type: str | None) -> str:
    kind = str(error.get("type"))
    ctx = dict(error.get("ctx") or {})
    if kind == "extra_forbidden":
        return f"is not a field of {event_type or 'any'} events; remove it"
    if kind == "string_pattern_mismatch" and field in _PATTERNS:
        reason = f"must be {_PATTERNS[field]}"
    elif kind in _REASONS:
        reason = _REASONS[kind](ctx)
    else:  # our own validators (vocabularies, version) and anything pydantic adds later
        reason = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    value = error.get("input")
    if kind in _NO_GOT or isinstance(value, dict | list):
        return reason
    shown = repr(value)
    if len(shown) > _MAX_GOT:
        shown = shown[:_MAX_GOT] + "…"
    return f"{reason}; got {shown}"


def event_errors(error: PydanticValidationError, *, batch: bool = False) -> list[EventError]:
    """The problems of events validated with :data:`EVENT_ADAPTER`, worded for people.

    Parameters
    ----------
    error : pydantic.ValidationError
        Raised validating one event, or a list of events when ``batch``.
    batch : bool
        Whether the first element of each error's location is the index in a list.

    Returns
    -------
    list of EventError

    Examples
    --------
    >>> try:
    ...     EVENT_ADAPTER.validate_python({"type": "search", "event_id": "s 1",
    ...                                    "customer_id": 3, "ts": "2026-11-11", "query": ""})
    ... except Exception as e:
    ...     [(x.field, x.reason) for x in event_errors(e)]
    [('event_id', "must be 1 to 128 letters, digits or _ . : -; got 's 1'"), \
('query', "must be at least 1 character(s) long; got ''")]
    """
    out: list[EventError] = []
    for e in error.errors():
        loc = list(e.get("loc", ()))
        index = int(loc.pop(0)) if batch and loc and isinstance(loc[0], int) else None
        event_type = str(loc.pop(0)) if loc and loc[0] in EVENT_TYPES else None
        kind = e.get("type")
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            field: str | None = "type"
        else:
            field = ".".join(str(p) for p in loc) or None
        out.append(EventError(index, event_type, field, _reason(e, field, event_type)))
    return out


def _message(problems: list[EventError]) -> str:
    event_type = next((p.event_type for p in problems if p.event_type), None)
    head = f"event {event_type}" if event_type else "event"
    parts = [p.reason if p.field is None else f"'{p.field}' {p.reason}" for p in problems]
    return f"{head}: {'. '.join(parts)}"


# -- the functions -----------------------------------------------------------------------------


def parse_event(data: Mapping[str, Any] | bytes | str) -> Event:
    """Validate one event: a mapping, or its JSON text.

    Parameters
    ----------
    data : mapping, bytes or str
        The event as a dict (``ts`` a datetime or ISO text) or as JSON.

    Returns
    -------
    Event
        A frozen :class:`TransactionEvent`, :class:`LoginEvent` ... with ``ts`` naive China time.

    Raises
    ------
    ValidationError
        Naming each bad field, why, and the value given (``event transaction: 'amount' must
        be greater than 0; got -5``); its ``field`` attribute is the first field named.

    Examples
    --------
    >>> parse_event({"type": "page_view", "event_id": "p-1", "customer_id": 7,
    ...              "ts": "2026-11-11 20:30", "page": "wealth_fund"}).page
    'wealth_fund'
    >>> parse_event({"type": "login", "version": 2, "event_id": "l-1", "customer_id": 7,
    ...              "ts": "2026-11-11 20:30"})
    Traceback (most recent call last):
    ...
    qianmian.errors.ValidationError: event login: 'version' must be a version this qianmian \
reads (1); upgrade qianmian to read newer events; got 2
    """
    try:
        if isinstance(data, bytes | bytearray | str):
            return EVENT_ADAPTER.validate_json(data)
        return EVENT_ADAPTER.validate_python(data)
    except PydanticValidationError as e:
        problems = event_errors(e)
        error = ValidationError(_message(problems))
        error.field = next((p.field for p in problems if p.field), None)  # type: ignore[attr-defined]
        raise error from None  # the pydantic traceback adds nothing to the message


def event_to_json(event: BaseEvent) -> dict[str, Any]:
    """The event as JSON-compatible values (``ts`` ISO text), without unset optional fields.

    >>> event_to_json(SearchEvent(event_id="s-1", customer_id=7, ts=datetime(2026, 11, 11, 20),
    ...                           query="装修"))
    {'event_id': 's-1', 'version': 1, 'customer_id': 7, 'ts': '2026-11-11T20:00:00', \
'type': 'search', 'query': '装修'}
    """
    return event.model_dump(mode="json", exclude_none=True)


def event_to_online(event: BaseEvent) -> tuple[EventSource, dict[str, Any]] | None:
    """The row the online feature store counts for ``event``, and its table; None if none.

    Transactions are rows of ``transactions``; logins, page views, searches and failed
    transfers are rows of ``app_events`` (``event_type``, ``page``, ``search_query``), shaped
    as the batch tables hold them so that online and batch features agree. Responses change
    no online feature.

    >>> event_to_online(PageViewEvent(event_id="p-1", customer_id=7,
    ...                               ts=datetime(2026, 11, 11, 20), page="wealth_fund"))
    ('app_events', {'customer_id': 7, 'ts': datetime.datetime(2026, 11, 11, 20, 0), \
'event_type': 'page_view', 'page': 'wealth_fund', 'search_query': None})
    """
    base = {"customer_id": event.customer_id, "ts": event.ts}
    match event:
        case TransactionEvent():
            row = base | {
                "amount": event.amount,
                "category": event.category,
                "channel": event.channel,
                "merchant_id": event.merchant_id,
                "mcc": event.mcc,
            }
            return "transactions", row
        case PageViewEvent():
            return "app_events", _app_row(base, "page_view", page=event.page)
        case SearchEvent():
            return "app_events", _app_row(base, "search", search_query=event.query)
        case LoginEvent() | TransferFailureEvent():
            return "app_events", _app_row(base, event.type)
    return None


def _app_row(
    base: dict[str, Any],
    event_type: str,
    *,
    page: str | None = None,
    search_query: str | None = None,
) -> dict[str, Any]:
    return base | {"event_type": event_type, "page": page, "search_query": search_query}


def event_context(event: BaseEvent) -> dict[str, Any]:
    """What a decision made for ``event`` sees of it (``DecisionRequest.event``).

    Rules read it as ``event_type``, ``event_amount``, ``event_category`` and ``event_page``.

    >>> event_context(TransactionEvent(event_id="t-1", customer_id=7,
    ...                                ts=datetime(2026, 11, 11, 20), amount=5000, category="家装"))
    {'type': 'transaction', 'amount': 5000.0, 'category': '家装', 'page': None}
    """
    return {
        "type": getattr(event, "type", None),
        "amount": getattr(event, "amount", None),
        "category": getattr(event, "category", None),
        "page": getattr(event, "page", None),
    }
