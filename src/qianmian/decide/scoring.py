"""Model scores for a request's candidates: fast, within a time budget, behind a circuit breaker.

* :class:`UpliftModelScorer` scores every (offer, channel) candidate of one request in one
  model call. For the S-learner over LightGBM that ``qianmian train uplift`` registers
  (``uplift-s``) it builds the rows itself — the customer's feature row repeated, offer and
  channel varied, once as held out and once as sent — in the column order and category codes
  the booster was trained with, and calls the booster on a numpy array: the model's own
  ``predict_outcomes`` to the last bit, without pandas on the request path. Other uplift
  learners go through ``predict_outcomes`` on a DataFrame.
* :class:`GuardedScorer` runs any :class:`CandidateScorer` within ``budget_ms`` and behind a
  circuit breaker (pybreaker); when the model raises, is too slow or the circuit is open it
  raises :class:`ScoringUnavailable` with the reason, and the engine decides by rules.
* :func:`load_scorer_or_reason` loads a registered model, or says why it cannot.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import pybreaker
from numpy.typing import NDArray

from qianmian.decide.configs import DecideConfig
from qianmian.errors import (
    ModelCompatibilityError,
    QianmianError,
    ValidationError,
    invalid_parameter,
)
from qianmian.models.pipeline import load_scorer
from qianmian.models.registry import ModelCard, ModelRegistry

__all__ = [
    "CandidateScorer",
    "GuardedScorer",
    "Scores",
    "ScoringUnavailable",
    "UpliftModelScorer",
    "circuit_breaker",
    "load_scorer_or_reason",
]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
_CHINA = timezone(timedelta(hours=8))
_SENT = "sent"  # the treatment label train_uplift gives sent contacts
_CONTACT = ("offer_id", "channel")  # model inputs that vary by candidate


class ScoringUnavailable(QianmianError, RuntimeError):
    """The models could not score this request; ``reason`` says why (rules decide instead)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Scores:
    """Model scores of a request's candidates, in the order they were given.

    ``p_response`` is P(convert | sent) for each candidate's offer × channel, ``uplift`` that
    minus P(convert | held out); ``model_versions`` names the models used (name → version).
    ``unseen_offers`` lists offers the model never saw in training: their scores are the
    model's guess for an unknown offer, and the engine may prefer the offer's prior.
    """

    p_response: FloatArray
    uplift: FloatArray
    model_versions: dict[str, int]
    unseen_offers: tuple[str, ...] = ()


class CandidateScorer(Protocol):
    """Scores one customer's candidates."""

    def score(
        self, features: Mapping[str, Any], offer_ids: Sequence[str], channels: Sequence[str]
    ) -> Scores:
        """Scores of candidate ``i`` = (``offer_ids[i]``, ``channels[i]``) for the customer."""
        ...


def _pairs(
    offer_ids: Sequence[str], channels: Sequence[str]
) -> tuple[list[tuple[str, str]], NDArray[np.intp]]:
    """Distinct (offer, channel) pairs in first-seen order, and each candidate's pair index."""
    if len(offer_ids) != len(channels):
        raise ValidationError(
            f"{len(offer_ids)} offer ids but {len(channels)} channels were given; each candidate "
            "needs one of each."
        )
    index: dict[tuple[str, str], int] = {}
    where = np.empty(len(offer_ids), dtype=np.intp)
    for i, pair in enumerate(zip(offer_ids, channels, strict=True)):
        where[i] = index.setdefault(pair, len(index))
    return list(index), where


def _missing(features: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """Model features (other than the candidate's offer and channel) absent from ``features``."""
    return [n for n in names if n not in features and n not in _CONTACT]


def _missing_message(missing: list[str]) -> str:
    shown = ", ".join(missing[:8]) + (" …" if len(missing) > 8 else "")
    return (
        f"The feature vector lacks {len(missing)} model feature(s): {shown}. Build the "
        "customer's features with the catalogue the model was trained on."
    )


def _number(value: Any) -> float:
    """A feature value as pandas.to_numeric(errors="coerce") would read it (None, text → NaN)."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class _BoosterRows:
    """The fast path: an S-learner over LightGBM scored from a numpy matrix built per request."""

    def __init__(self, model: Any, card: ModelCard) -> None:
        booster = model.model_.booster_
        names = list(card.features)
        indicator = booster.feature_name()[len(names) :]
        if booster.feature_name()[: len(names)] != names or len(indicator) != 1:
            raise ModelCompatibilityError(
                f"Model {card.label}'s booster reads {booster.feature_name()[:3]}… "
                f"({booster.num_feature()} columns), not its card's {len(names)} features plus "
                "the sent indicator; retrain and register it again."
            )
        categorical = [i for i, n in enumerate(names) if card.feature_types[n] == "string"]
        set_of_categorical = set(categorical)
        categories = booster.pandas_categorical or []
        trained_as = booster.params.get("categorical_column")
        if len(categories) != len(categorical) or (
            trained_as is not None and list(trained_as) != categorical
        ):
            raise ModelCompatibilityError(
                f"Model {card.label} was trained with {len(categories)} categorical columns but "
                f"its card lists {len(categorical)} string features; retrain and register it again."
            )
        self.booster = booster
        self.n_columns = len(names) + 1
        self.numeric = [(i, n) for i, n in enumerate(names) if i not in set_of_categorical]
        # value → category code, as LightGBM's pandas conversion maps them (unknown → NaN)
        self.codes = {
            names[i]: (i, {v: float(c) for c, v in enumerate(cats)})
            for i, cats in zip(categorical, categories, strict=True)
        }
        self.offer_col, self.offer_codes = self.codes["offer_id"]
        self.channel_col, self.channel_codes = self.codes["channel"]
        self.names = names

    def outcomes(
        self, features: Mapping[str, Any], pairs: list[tuple[str, str]]
    ) -> tuple[FloatArray, FloatArray, list[str]]:
        """P(convert | held out) and P(convert | sent) per pair, and the offers never trained on."""
        missing = _missing(features, self.names)
        if missing:
            raise ValidationError(_missing_message(missing))
        row = np.empty(self.n_columns)
        for i, name in self.numeric:
            row[i] = _number(features[name])
        for name, (i, codes) in self.codes.items():
            value = features.get(name)
            row[i] = codes.get(value, math.nan) if value is not None else math.nan
        m = len(pairs)
        X = np.tile(row, (2 * m, 1))
        offers = [self.offer_codes.get(o, math.nan) for o, _ in pairs]
        X[:, self.offer_col] = offers * 2
        X[:, self.channel_col] = [self.channel_codes.get(c, math.nan) for _, c in pairs] * 2
        X[:m, -1] = 0.0  # held out
        X[m:, -1] = 1.0  # sent
        # the call LGBMClassifier.predict_proba makes, on the matrix its pandas path would build
        p = self.booster.predict(X, num_threads=1)
        unseen = [o for (o, _), code in zip(pairs, offers, strict=True) if math.isnan(code)]
        return p[:m], p[m:], unseen


class UpliftModelScorer:
    """Scores candidates with a registered uplift model (sent vs held out).

    Parameters
    ----------
    model : fitted uplift learner
        From :func:`qianmian.models.train.train_uplift`: one treatment (``"sent"``), the offer
        and the channel among its features.
    card : ModelCard
        Its registry card (features, types, name and version).
    """

    def __init__(self, model: Any, card: ModelCard) -> None:
        treatments = [str(t) for t in getattr(model, "treatments_", [])]
        if not callable(getattr(model, "predict_outcomes", None)) or treatments != [_SENT]:
            raise ModelCompatibilityError(
                f"Model {card.label} is not an uplift model of sent vs held-out contacts "
                f"(treatments {treatments}); train one with `qianmian train uplift`."
            )
        lacking = [f for f in ("offer_id", "channel") if f not in card.features]
        if lacking:
            raise ModelCompatibilityError(
                f"Model {card.label} does not read {' and '.join(lacking)}, so it cannot tell "
                "candidates apart; train it with `qianmian train uplift`."
            )
        self.model = model
        self.card = card
        self._fast = _BoosterRows(model, card) if _is_lightgbm_s_learner(model) else None
        self._trained_offers = _trained_offers(model)

    @classmethod
    def from_registry(
        cls,
        registry: ModelRegistry,
        name: str = "uplift-s",
        version: int | Literal["latest", "production"] | None = "production",
    ) -> UpliftModelScorer:
        """Load ``name`` from ``registry`` (schema, checksum and library checks included)."""
        model, card = load_scorer(registry, name, version)
        return cls(model, card)

    def __repr__(self) -> str:
        path = "booster" if self._fast is not None else "frame"
        return f"UpliftModelScorer({self.card.label}, {path})"

    @property
    def fast(self) -> bool:
        """Whether requests are scored on the booster directly (an S-learner over LightGBM)."""
        return self._fast is not None

    def score(
        self, features: Mapping[str, Any], offer_ids: Sequence[str], channels: Sequence[str]
    ) -> Scores:
        """Scores of each candidate (``offer_ids[i]`` on ``channels[i]``) for one customer.

        Parameters
        ----------
        features : mapping
            The customer's feature vector (catalogue name → value), e.g. from the online store.
        offer_ids, channels : sequence of str, same length

        Returns
        -------
        Scores
        """
        pairs, where = _pairs(offer_ids, channels)
        versions = {self.card.name: self.card.version}
        if not pairs:
            return Scores(np.zeros(0), np.zeros(0), versions)
        if self._fast is not None:
            held_out, sent, unseen = self._fast.outcomes(features, pairs)
        else:
            held_out, sent, unseen = self._frame_outcomes(features, pairs)
        return Scores(sent[where], (sent - held_out)[where], versions, tuple(dict.fromkeys(unseen)))

    def _frame_outcomes(
        self, features: Mapping[str, Any], pairs: list[tuple[str, str]]
    ) -> tuple[FloatArray, FloatArray, list[str]]:
        """Any uplift learner: ``predict_outcomes`` on a DataFrame of the candidate rows."""
        from qianmian.models.datasets import prepare_features

        names = self.card.features
        missing = _missing(features, names)
        if missing:
            raise ValidationError(_missing_message(missing))
        m = len(pairs)
        # numbers as floats (a column of None would otherwise be read as a category)
        columns: dict[str, Any] = {
            n: [features[n]] * m
            if self.card.feature_types[n] == "string"
            else np.full(m, _number(features[n]))
            for n in names
            if n not in _CONTACT
        }
        columns["offer_id"] = [o for o, _ in pairs]
        columns["channel"] = [c for _, c in pairs]
        frame = pd.DataFrame(columns)
        mu = np.asarray(self.model.predict_outcomes(prepare_features(frame, names)))
        trained = self._trained_offers
        unseen = [o for o, _ in pairs if trained is not None and o not in trained]
        return mu[:, 0], mu[:, 1], unseen


def _is_lightgbm_s_learner(model: Any) -> bool:
    from qianmian.models.uplift import SLearner

    inner = getattr(model, "model_", None)
    return (
        isinstance(model, SLearner)
        and bool(getattr(model, "binary_outcome_", False))
        and type(inner).__name__ == "LGBMClassifier"
        and getattr(inner, "objective_", None) == "binary"
        and [int(c) for c in getattr(inner, "classes_", [])] == [0, 1]
    )


def _trained_offers(model: Any) -> set[str] | None:
    """Offers a LightGBM-based learner saw in training (None if it cannot tell)."""
    for inner in [getattr(model, "model_", None), *getattr(model, "models_", [])]:
        booster = getattr(inner, "booster_", None)
        if booster is not None and booster.pandas_categorical:
            names = booster.feature_name()
            cats = booster.params.get("categorical_column", [])
            if "offer_id" in names and names.index("offer_id") in cats:
                return set(booster.pandas_categorical[list(cats).index(names.index("offer_id"))])
    return None


def load_scorer_or_reason(
    registry: ModelRegistry,
    name: str = "uplift-s",
    version: int | Literal["latest", "production"] | None = "production",
) -> tuple[UpliftModelScorer | None, str | None]:
    """The registered model as a scorer, or None and why it cannot be used.

    A missing, altered, corrupt or incompatible model is not an error here: the engine then
    decides by rules and reports the reason.
    """
    try:
        return UpliftModelScorer.from_registry(registry, name, version), None
    except Exception as e:  # any failure to load (unpickling raises anything) means rules decide
        logger.warning("model %s cannot be used: %s", name, e)
        return None, f"model {name} is unavailable: {type(e).__name__}: {e}"


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
