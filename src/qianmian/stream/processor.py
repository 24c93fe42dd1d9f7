"""The stream processor: the consumer that turns events into live features and trigger offers.

One :meth:`StreamProcessor.step` handles one batch read from the bus:

1. read up to ``batch_size`` messages (idle ones reclaimed from a dead consumer first);
2. parse each; an invalid event becomes a dead letter with the reason;
3. skip event ids already in the processed ledger, and repeats within the batch: they are
   only acknowledged, so a redelivered event changes nothing;
4. add the rest to the online features in one
   :meth:`~qianmian.features.online.base.OnlineFeatureStore.apply_events` call; an event for a
   customer the feature snapshot does not hold becomes a dead letter ("unknown customer");
5. ``response`` events go to :meth:`DecisionEngine.record_response
   <qianmian.decide.engine.DecisionEngine.record_response>` (the event id is the response id);
   one naming an unknown decision becomes a dead letter;
6. for events whose type has triggers: read the updated features of those customers in one
   ``get_many``, build each trigger row, match, and :func:`~qianmian.stream.triggers.fire`
   every matching trigger — its offer goes through the whole decision engine (consent, caps,
   budgets, suitability);
7. flush the decision log (the batch's trigger decisions are durable), keep the dead letters,
   **then** mark the event ids processed, **then** acknowledge.

Delivery is at least once. A crash or a backend failure anywhere before the acknowledgement
leaves the batch pending and it is delivered again; the online store ignores an event id it
has applied, a response id is recorded once, and a trigger's idempotency key (trigger ×
event) lets it decide once — so redoing a batch never counts an event twice nor sends a
second offer. Dead-lettered events are marked processed too, so a redelivery does not
dead-letter them twice.

**Event-to-offer latency** is the wall-clock time from the bus receiving the event to the
offer's decision being made. The publish time is read from the message id when it carries one
(Redis Streams ids begin with milliseconds since the epoch). Otherwise (the in-process bus
numbers its messages) it is the processor's "now" minus the event's own ``ts`` — or, when
deciding in event time (:data:`EVENT_TIME`, replays of past days), the time since the batch
was read.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from qianmian.decide.feedback import now_china
from qianmian.decide.log.base import ResponseRecord
from qianmian.decide.rule_fields import CONTEXT_FIELDS
from qianmian.errors import (
    NotFoundError,
    QianmianError,
    StoreError,
    ValidationError,
    invalid_parameter,
)
from qianmian.stream.events import ResponseEvent, event_context, event_to_online, parse_event
from qianmian.stream.triggers import Trigger, TriggerSet, fire, trigger_row

if TYPE_CHECKING:
    from qianmian.decide.engine import DecisionEngine
    from qianmian.features.online.base import EventSource
    from qianmian.stream.bus.base import Delivery, EventBus
    from qianmian.stream.events import Event

__all__ = ["EVENT_TIME", "RunReport", "StepReport", "StreamProcessor"]

logger = logging.getLogger(__name__)

EVENT_TIME: Literal["event"] = "event"
"""``clock=EVENT_TIME``: decide as of each event's own time (replays of past days, tests)."""
LATENCY_SAMPLES = 100_000  # the most recent event-to-offer latencies a run keeps
_COUNTS = (  # the counters a RunReport sums over its steps
    "read",
    "processed",
    "duplicates",
    "dead",
    "responses",
    "fired",
    "offers",
    "stale",
    "repeated",
)
_LOG_RETRY_SECONDS = 5.0  # after a failed flush of the decision log, batches skip flushing
_TIMED_ID = re.compile(r"^(\d{12,14})-\d+$")  # "<ms since epoch>-<sequence>"


@dataclass
class StepReport:
    """What one batch did: counts, and each offer's event-to-offer latency (ms)."""

    read: int = 0
    processed: int = 0  # events whose effects are complete (dead letters excluded)
    duplicates: int = 0  # already in the ledger, or repeated in the batch: acknowledged only
    dead: int = 0
    responses: int = 0  # response events recorded
    fired: int = 0  # trigger decisions made (the engine answered)
    offers: int = 0  # of which presented an offer
    stale: int = 0  # trigger matches whose event had outlived the trigger's ttl
    repeated: int = 0  # trigger matches this event had already fired (a redelivery)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)


@dataclass
class RunReport:
    """Totals of a :meth:`StreamProcessor.run`."""

    steps: int = 0
    read: int = 0
    processed: int = 0
    duplicates: int = 0
    dead: int = 0
    responses: int = 0
    fired: int = 0
    offers: int = 0
    stale: int = 0
    repeated: int = 0
    failures: int = 0  # steps that failed (their batches left pending)
    seconds: float = 0.0
    latencies_ms: deque[float] = field(
        default_factory=lambda: deque(maxlen=LATENCY_SAMPLES), repr=False
    )

    def add(self, step: StepReport) -> None:
        """Add one step's counts."""
        self.steps += 1
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(step, name))
        self.latencies_ms.extend(step.latencies_ms)

    @property
    def events_per_second(self) -> float:
        """Messages handled per second of the run."""
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self, percentile: float) -> float | None:
        """A percentile of the event-to-offer latency (None before the first offer)."""
        if not self.latencies_ms:
            return None
        return float(np.percentile(np.fromiter(self.latencies_ms, float), percentile))


@dataclass
class _Work:
    """One valid, new event of the batch."""

    delivery: Delivery
    event: Event
    features_outcome: str | None = None  # apply_events' answer, if it counts in features


class StreamProcessor:
    """Consumes the event bus: features, responses, triggers; acknowledges after the work.

    Parameters
    ----------
    bus : EventBus
    engine : DecisionEngine
        Its online features are updated; its decisions make the trigger offers.
    triggers : TriggerSet
    consumer : str
        This consumer's name in the bus's group (one per running process).
    batch_size : int
        Most messages read per step.
    clock : callable, "event" or None
        "Now" for trigger time-to-live and decisions (naive China time). None: the wall clock;
        :data:`EVENT_TIME`: each event's own time.

    Examples
    --------
    >>> from qianmian.stream.processor import RunReport, StepReport
    >>> total = RunReport()
    >>> total.add(StepReport(read=3, processed=2, duplicates=1, latencies_ms=[12.0]))
    >>> total.read, total.processed, total.latency_ms(50)
    (3, 2, 12.0)
    """

    def __init__(
        self,
        bus: EventBus,
        engine: DecisionEngine,
        triggers: TriggerSet,
        *,
        consumer: str = "consumer-1",
        batch_size: int = 500,
        clock: Callable[[], datetime] | Literal["event"] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise invalid_parameter(self, "batch_size", "a positive int", batch_size)
        if not isinstance(consumer, str) or not consumer.strip():
            raise invalid_parameter(self, "consumer", "a non-empty name", consumer)
        self.bus = bus
        self.engine = engine
        self.triggers = triggers
        self.consumer = consumer
        self.batch_size = batch_size
        self.clock = clock
        self._log_retry_at = 0.0  # monotonic time before which the log is not flushed again
        self._read_at = 0.0  # wall time of the last read
        self._feature_readers: dict[str, bool] = {}  # trigger id → its rule reads features

    # -- one batch ---------------------------------------------------------------------------

    def step(self, block_ms: int = 100) -> StepReport:
        """Read one batch and process it; see the module docstring for the order of work.

        Raises
        ------
        StoreError
            A backend (bus, online store, decision state or log) failed; the batch is left
            unacknowledged and will be delivered again.
        """
        started = time.perf_counter()
        report = StepReport()
        deliveries = self.bus.read(self.consumer, count=self.batch_size, block_ms=block_ms)
        self._read_at = time.time()
        report.read = len(deliveries)
        if not deliveries:
            report.seconds = time.perf_counter() - started
            return report
        try:
            self._process(deliveries, report)
        except QianmianError as e:
            logger.error(
                "Consumer %s failed on a batch of %d messages (first %s): %s. The batch is left "
                "unacknowledged and will be delivered again.",
                self.consumer,
                len(deliveries),
                deliveries[0].message_id,
                e,
            )
            raise
        report.seconds = time.perf_counter() - started
        return report

    def _process(self, deliveries: list[Delivery], report: StepReport) -> None:
        dead: list[tuple[Delivery, str]] = []
        work: list[_Work] = []
        for delivery in deliveries:
            try:
                work.append(_Work(delivery, parse_event(delivery.event)))
            except ValidationError as e:
                dead.append((delivery, str(e)))
        work = self._new_only(work, report)
        self._apply_features(work, dead)
        done = [w for w in work if w.features_outcome != "unknown_customer"]
        self._record_responses(done, dead, report)
        dead_ids = {id(d) for d, _ in dead}
        self._fire_triggers([w for w in done if id(w.delivery) not in dead_ids], dead, report)
        if report.fired:
            self._flush_decisions()
        if dead:
            self.bus.dead_letter(dead)
        ledger = [w.event.event_id for w in work]  # dead ones too: never dead-lettered twice
        if ledger:
            self.bus.mark_processed(ledger)
        self.bus.ack([d.message_id for d in deliveries])
        dead_ids = {id(d) for d, _ in dead}
        report.processed = sum(id(w.delivery) not in dead_ids for w in work)
        report.dead = len(dead)

    def _flush_decisions(self) -> None:
        """Make the batch's trigger decisions durable before its events are acknowledged.

        The log buffers appends; a consumer killed after acknowledging would otherwise lose
        the decisions of batches it had finished (their claims stand, so they are never
        redone). If the log cannot write now it keeps them (PostgreSQL: spooled) and the
        stream goes on: holding it back would stop every trigger while the log is down. After
        a failure, batches do not wait on the log again for ``_LOG_RETRY_SECONDS``.
        """
        if time.monotonic() < self._log_retry_at:
            return
        try:
            self.engine.log.flush()
        except StoreError as e:
            self._log_retry_at = time.monotonic() + _LOG_RETRY_SECONDS
            logger.warning(
                "Consumer %s could not flush the decision log (%s); its decisions stay buffered "
                "and are written when the log recovers.",
                self.consumer,
                e,
            )

    def _new_only(self, work: list[_Work], report: StepReport) -> list[_Work]:
        """Drop events already in the ledger and repeats within the batch."""
        if not work:
            return work
        done_before = self.bus.processed([w.event.event_id for w in work])
        seen: set[str] = set()
        fresh: list[_Work] = []
        for w, already in zip(work, done_before, strict=True):
            if already or w.event.event_id in seen:
                report.duplicates += 1
                continue
            seen.add(w.event.event_id)
            fresh.append(w)
        return fresh

    def _apply_features(self, work: list[_Work], dead: list[tuple[Delivery, str]]) -> None:
        """One ``apply_events`` call for every event that counts in the online features."""
        items: list[tuple[str, EventSource, dict[str, Any]]] = []
        counted: list[_Work] = []
        for w in work:
            online = event_to_online(w.event)
            if online is not None:
                items.append((w.event.event_id, online[0], online[1]))
                counted.append(w)
        if not items:
            return
        outcomes = self.engine.features.apply_events(items)
        for w, outcome in zip(counted, outcomes, strict=True):
            w.features_outcome = outcome
            if outcome == "unknown_customer":
                dead.append(
                    (
                        w.delivery,
                        f"unknown customer: customer_id {w.event.customer_id} is not in the "
                        "online feature snapshot",
                    )
                )
            elif outcome == "no_snapshot":
                raise StoreError(
                    "The online feature store holds no snapshot, so events cannot be counted; "
                    "load one (`qianmian stream run` and `qianmian serve` load it at start)."
                )

    def _record_responses(
        self, work: list[_Work], dead: list[tuple[Delivery, str]], report: StepReport
    ) -> None:
        for w in work:
            e = w.event
            if not isinstance(e, ResponseEvent):
                continue
            record = ResponseRecord(
                response_id=e.event_id,
                decision_id=e.decision_id,
                customer_id=e.customer_id,
                offer_id=e.offer_id,
                response_type=e.response_type,
                ts=e.ts,
                value=e.value,
            )
            try:
                self.engine.record_response(record)
            except (NotFoundError, ValidationError) as err:
                dead.append((w.delivery, f"response not recorded: {err}"))
                continue
            report.responses += 1

    def _fire_triggers(
        self, work: list[_Work], dead: list[tuple[Delivery, str]], report: StepReport
    ) -> None:
        """Match and fire the triggers of each event, reading features once per customer.

        Only triggers live on the event's day are evaluated, on a row holding only the fields
        they read; features are read only for customers whose live triggers read some (a
        rule over the event alone, such as a big purchase at a furniture store, needs none).

        A trigger that cannot decide for a reason other than a backend (its rule fails on the
        row, an offer left the catalogue, the engine does not know the customer) dead-letters
        the event with the reason: redelivery would not help, and it must not pass unseen.
        """
        candidates: list[tuple[_Work, list[Trigger]]] = []
        for w in work:
            day = w.event.ts.date()
            live = [t for t in self.triggers.for_event(w.event.type) if t.live_on(day)]
            if live:
                candidates.append((w, live))
        if not candidates:
            return
        customers = sorted(
            {w.event.customer_id for w, live in candidates if any(map(self._reads_features, live))}
        )
        vectors = dict(zip(customers, self.engine.features.get_many(customers), strict=True))
        for w, live in candidates:
            event = w.event
            features: dict[str, Any] | None = {}
            if any(map(self._reads_features, live)):
                features = vectors.get(event.customer_id)
            if features is None:  # e.g. a response for a customer with no features
                continue
            context, ts = event_context(event), event.ts  # naive China time (parse_event)
            fields = {f for t in live for f in t.rule.fields_used}
            row = trigger_row(features, event.type, context, ts, self.engine.tags, fields)
            try:
                results = [
                    fire(
                        trigger,
                        engine=self.engine,
                        customer_id=event.customer_id,
                        event_id=event.event_id,
                        event_ts=ts,
                        event_context=context,
                        now=self._now(ts),
                    )
                    for trigger in self.triggers.matching(event.type, row, ts.date())
                ]
            except StoreError:
                raise
            except QianmianError as e:
                dead.append((w.delivery, f"trigger failed: {e}"))
                continue
            for result in results:
                if result.status == "stale":
                    report.stale += 1
                elif result.status == "duplicate":
                    report.repeated += 1
                else:
                    report.fired += 1
                    if result.fired:  # an offer was presented
                        report.offers += 1
                        report.latencies_ms.append(self._latency_ms(w.delivery, ts))

    def _reads_features(self, trigger: Trigger) -> bool:
        """Whether the trigger's rule reads a customer feature or tag (not only the event)."""
        reads = self._feature_readers.get(trigger.id)
        if reads is None:
            reads = bool(set(trigger.rule.fields_used) - CONTEXT_FIELDS.keys())
            self._feature_readers[trigger.id] = reads
        return reads

    def _latency_ms(self, delivery: Delivery, event_ts: datetime) -> float:
        """Event-to-offer latency; see the module docstring for the three cases."""
        m = _TIMED_ID.match(delivery.message_id)
        if m is not None:
            return time.time() * 1000 - int(m.group(1))
        if self.clock == EVENT_TIME:
            return (time.time() - self._read_at) * 1000
        return (self._now(event_ts) - event_ts).total_seconds() * 1000

    def _now(self, event_ts: datetime) -> datetime:
        if self.clock == EVENT_TIME:
            return event_ts
        if self.clock is None:
            return now_china()
        return self.clock()  # type: ignore[operator]

    # -- many batches ------------------------------------------------------------------------

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        max_idle_steps: int | None = None,
        progress: Callable[[RunReport], None] | None = None,
        block_ms: int = 100,
        retry_seconds: float = 1.0,
        max_failures: int = 30,
    ) -> RunReport:
        """Process batches until ``stop`` is set or ``max_idle_steps`` steps in a row read none.

        A failed step (a backend down) is logged and retried after ``retry_seconds`` (its
        batch is pending and is delivered again); ``max_failures`` failures in a row raise the
        last error. ``stop`` is checked between batches, so a batch is never left half done.
        ``progress`` receives the running totals after each step.
        """
        total = RunReport()
        started = time.perf_counter()
        idle = failures = 0
        while stop is None or not stop.is_set():
            try:
                step = self.step(block_ms=block_ms)
            except StoreError:
                failures += 1
                total.failures += 1
                if failures >= max_failures:
                    raise
                if stop is not None:
                    stop.wait(retry_seconds)
                else:
                    time.sleep(retry_seconds)
                continue
            failures = 0
            total.add(step)
            total.seconds = time.perf_counter() - started
            if progress is not None:
                progress(total)
            idle = idle + 1 if step.read == 0 else 0
            if max_idle_steps is not None and idle >= max_idle_steps:
                break
        total.seconds = time.perf_counter() - started
        return total
