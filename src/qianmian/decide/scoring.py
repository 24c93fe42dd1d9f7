"""Model scores for a request's candidates, fast, and the contract every scorer meets.

* :class:`UpliftModelScorer` scores every (offer, channel) candidate of one request in one
  model call. For the S-learner over LightGBM that ``qianmian train uplift`` registers
  (``uplift-s``) it builds the rows itself — the customer's feature row repeated, offer and
  channel varied, once as held out and once as sent — in the column order and category codes
  the booster was trained with, and calls the booster on a numpy array: the model's own
  ``predict_outcomes`` to the last bit, without pandas on the request path. Other uplift
  learners go through ``predict_outcomes`` on a DataFrame.
* :class:`~qianmian.decide.scoring_guard.GuardedScorer` runs any :class:`CandidateScorer`
  within ``budget_ms`` and behind a circuit breaker (pybreaker); when the model raises, is too
  slow or the circuit is open it raises :class:`ScoringUnavailable` with the reason, and the
  engine decides by rules.
* :func:`load_scorer_or_reason` loads a registered model, or says why it cannot.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from qianmian.errors import ModelCompatibilityError, QianmianError, ValidationError
from qianmian.models.pipeline import load_scorer
from qianmian.models.registry import ModelCard, ModelRegistry

__all__ = [
    "CandidateScorer",
    "Scores",
    "ScoringUnavailable",
    "UpliftModelScorer",
    "load_scorer_or_reason",
]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
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
