"""A scorer run within a time budget and behind a circuit breaker, so a model never holds a request.

:class:`GuardedScorer` wraps any :class:`~qianmian.decide.scoring.CandidateScorer`; when the
model raises, is too slow or the circuit is open it raises
:class:`~qianmian.decide.scoring.ScoringUnavailable` with the reason, and the engine decides by
rules. :func:`circuit_breaker` builds the breaker it uses by default.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pybreaker

from qianmian.decide.configs import DecideConfig
from qianmian.decide.scoring import CandidateScorer, Scores, ScoringUnavailable
from qianmian.errors import invalid_parameter

__all__ = ["GuardedScorer", "circuit_breaker"]

_CHINA = timezone(timedelta(hours=8))


def circuit_breaker(failures: int = 5, reset_seconds: float = 30.0) -> pybreaker.CircuitBreaker:
    """A breaker that opens after ``failures`` consecutive failures, half-opens after
    ``reset_seconds``, and lets the failure that trips it through unchanged."""
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        raise invalid_parameter("circuit_breaker", "failures", "a positive int", failures)
    if (
        isinstance(reset_seconds, bool)
        or not isinstance(reset_seconds, int | float)
        or not reset_seconds > 0
    ):
        raise invalid_parameter(
            "circuit_breaker", "reset_seconds", "a positive number", reset_seconds
        )
    return pybreaker.CircuitBreaker(
        fail_max=failures, reset_timeout=reset_seconds, throw_new_error_on_trip=False
    )


class _OpenedAt(pybreaker.CircuitBreakerListener):
    """Notes when the breaker last opened (pybreaker keeps it only in its private storage)."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        if new_state is not None and new_state.name == pybreaker.STATE_OPEN:
            self.at = datetime.now(UTC)


class _BudgetExceeded(Exception):
    """The model did not answer within the budget (counted as a failure by the breaker)."""


class GuardedScorer:
    """A :class:`CandidateScorer` run within a time budget and behind a circuit breaker.

    Each call runs the scorer on a small thread pool (two workers) and waits at most
    ``budget_ms``, so a hung model never holds a request. A raise or a time-out counts as a
    failure; after ``breaker.fail_max`` consecutive failures the circuit opens and calls fail at
    once, without touching the model, until ``breaker.reset_timeout`` seconds have passed; then
    calls are let through again as trials, and the first outcome closes the circuit or opens it
    for another period. Every refusal is a :class:`ScoringUnavailable` with the reason.

    Parameters
    ----------
    scorer : CandidateScorer
    budget_ms : float
        Longest a call may take (:attr:`DecideConfig.model_budget_ms
        <qianmian.decide.configs.DecideConfig.model_budget_ms>`).
    breaker : pybreaker.CircuitBreaker, optional
        Default :func:`circuit_breaker` of ``failures`` and ``reset_seconds``.
    failures : int, default=5
        Consecutive failures that open the circuit (when no ``breaker`` is given).
    reset_seconds : float, default=30.0
        How long the circuit stays open before a trial call (when no ``breaker`` is given).

    Examples
    --------
    >>> import numpy as np
    >>> class Constant:
    ...     def score(self, features, offer_ids, channels):
    ...         n = len(offer_ids)
    ...         return Scores(np.full(n, 0.1), np.full(n, 0.02), {"constant": 1})
    >>> with GuardedScorer(Constant(), budget_ms=50) as guard:
    ...     guard.score({}, ["OF-WM-R2", "OF-INST-6"], ["sms", "sms"]).uplift.tolist()
    [0.02, 0.02]

    Notes
    -----
    The breaker's own ``call`` holds its lock while the guarded function runs, which would
    queue concurrent requests behind one another; the model therefore runs outside it, and only
    the outcome is passed through the breaker afterwards. A call abandoned at the budget keeps
    its worker thread until the model returns.
    """

    def __init__(
        self,
        scorer: CandidateScorer,
        budget_ms: float,
        breaker: pybreaker.CircuitBreaker | None = None,
        *,
        failures: int = 5,
        reset_seconds: float = 30.0,
    ) -> None:
        if (
            isinstance(budget_ms, bool)
            or not isinstance(budget_ms, int | float)
            or not budget_ms > 0
        ):
            raise invalid_parameter(
                self, "budget_ms", "a positive number of milliseconds", budget_ms
            )
        self.scorer = scorer
        self.budget_ms = float(budget_ms)
        self.breaker = breaker if breaker is not None else circuit_breaker(failures, reset_seconds)
        self._opened = _OpenedAt()
        self.breaker.add_listener(self._opened)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qianmian-scoring")

    @classmethod
    def from_config(cls, scorer: CandidateScorer, config: DecideConfig) -> GuardedScorer:
        """Budget and breaker from a :class:`~qianmian.decide.configs.DecideConfig`."""
        return cls(
            scorer,
            config.model_budget_ms,
            failures=config.breaker_failures,
            reset_seconds=config.breaker_reset_seconds,
        )

    def __repr__(self) -> str:
        return f"GuardedScorer({self.scorer!r}, budget_ms={self.budget_ms:g}, {self.state})"

    @property
    def state(self) -> str:
        """The breaker's state: ``closed``, ``open`` or ``half-open``."""
        return str(self.breaker.current_state)

    def score(
        self, features: Mapping[str, Any], offer_ids: Sequence[str], channels: Sequence[str]
    ) -> Scores:
        """The scorer's :meth:`~CandidateScorer.score`, or :class:`ScoringUnavailable`."""
        self._refuse_while_open()
        started = time.perf_counter()
        future = self._pool.submit(self.scorer.score, features, offer_ids, channels)
        try:
            scores = future.result(timeout=self.budget_ms / 1000.0)
        except FutureTimeout:
            future.cancel()  # if it is still queued behind a hung call, never start it
            waited = (time.perf_counter() - started) * 1000.0
            reason = (
                f"model took more than {waited:.0f} ms > budget {self.budget_ms:g} ms "
                "(the request stopped waiting)"
            )
            raise ScoringUnavailable(self._failed(_BudgetExceeded(reason), reason)) from None
        except Exception as e:
            reason = f"model raised {type(e).__name__}: {e}"
            raise ScoringUnavailable(self._failed(e, reason)) from e
        self._record(None)
        return scores

    def close(self) -> None:
        """Stop the worker threads (a call still running finishes in the background)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> GuardedScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the breaker ---------------------------------------------------------------------------

    def _retry_at(self) -> datetime:
        if self._opened.at is None:  # opened by another process sharing the breaker's storage
            self._opened.at = datetime.now(UTC)
        return self._opened.at + timedelta(seconds=float(self.breaker.reset_timeout))

    def _open_reason(self) -> str:
        at = self._retry_at().astimezone(_CHINA)
        return (
            f"circuit open after {self.breaker.fail_counter} consecutive model failures; "
            f"retrying at {at:%H:%M:%S} (China time)"
        )

    def _refuse_while_open(self) -> None:
        state = self.breaker.current_state
        if state == pybreaker.STATE_OPEN and datetime.now(UTC) < self._retry_at():
            raise ScoringUnavailable(self._open_reason())

    def _failed(self, error: BaseException, reason: str) -> str:
        """Record a failure; the reason, with the circuit's opening if this failure opened it."""
        self._record(error)
        if self.breaker.current_state == pybreaker.STATE_OPEN:
            return f"{reason}; {self._open_reason()}"
        return reason

    def _record(self, error: BaseException | None) -> None:
        """Pass an outcome through the breaker's state machine (success if ``error`` is None)."""

        def outcome() -> None:
            if error is not None:
                raise error

        try:
            self.breaker.call(outcome)
        except pybreaker.CircuitBreakerError:
            pass  # opened meanwhile (or tripped now, with a breaker that raises its own error)
        except BaseException as e:
            if e is not error:
                raise
