"""What every recommender shares: the fit / recommend contract, held-product exclusion, saving.

A recommender learns from customer × product interactions (:func:`~.interactions.interaction_pairs`
accepts events or pairs) and ranks products per customer. Subclasses implement
:meth:`Recommender._fit` and :meth:`Recommender._scores`; this class keeps the customer and
product indexes, the held products, the popularity used for customers a model cannot score, the
top-k selection and the artifact on disk.
"""

from __future__ import annotations

import logging
import platform
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from numbers import Integral
from pathlib import Path
from typing import Any, Self

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

import qianmian
from qianmian.errors import NotFoundError, SchemaError, ValidationError, invalid_parameter
from qianmian.models.recommend.interactions import interaction_pairs

__all__ = ["RECOMMENDATION_COLUMNS", "Recommender"]

logger = logging.getLogger(__name__)

RECOMMENDATION_COLUMNS: tuple[str, ...] = ("customer_id", "rank", "product_id", "score")


def is_int(value: object) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


_FILE_IN_FOLDER = "recommender.joblib"


class Recommender(ABC, BaseEstimator):
    """Ranks products for customers from their interactions (and, for some models, side features).

    Attributes
    ----------
    customers_ : ndarray of int64, sorted
        Customers seen in the interactions.
    products_ : ndarray of str, sorted
        The products that can be recommended (those seen in the interactions).
    held_ : scipy.sparse.csr_matrix of shape (n_customers, n_products)
        1 where the customer holds the product.
    popularity_ : ndarray of shape (n_products,)
        Summed interaction weight of each product over customers: the ranking given to customers
        the model cannot score.
    """

    def _invalid(self, name: str, must: str) -> Exception:
        return invalid_parameter(self, name, must, getattr(self, name))

    def _check_params(self) -> None:
        """Raise :class:`~qianmian.errors.ConfigError` for a bad constructor parameter."""

    @abstractmethod
    def _fit(
        self,
        pairs: pd.DataFrame,
        side_features: pd.DataFrame | None,
        product_features: pd.DataFrame | None,
    ) -> None:
        """Learn from ``pairs`` (customer_id, product_id, weight, held, row, col)."""

    @abstractmethod
    def _scores(self, customer_ids: np.ndarray) -> np.ndarray:
        """Scores of shape (len(customer_ids), n_products); NaN rows for customers it cannot score."""

    def fit(
        self,
        interactions: pd.DataFrame,
        side_features: pd.DataFrame | None = None,
        *,
        product_features: pd.DataFrame | None = None,
    ) -> Self:
        """Learn from interactions.

        Parameters
        ----------
        interactions : DataFrame
            ``customer_id``, ``product_id`` and optionally ``weight`` (> 0, default 1) and ``held``
            (default True); events are aggregated per pair (strongest weight; held if ever held).
        side_features : DataFrame indexed by customer_id, optional
            Customer side features (used by models that take them, ignored by the others).
        product_features : DataFrame indexed by product_id, optional
            Product side features (idem).

        Returns
        -------
        self
        """
        self._check_params()
        pairs = interaction_pairs(interactions)
        if pairs.empty:
            raise ValidationError("interactions is empty: there is nothing to learn from.")
        self.customers_ = np.unique(pairs["customer_id"].to_numpy(np.int64))
        self.products_ = np.unique(pairs["product_id"].to_numpy(str)).astype(object)
        rows = np.searchsorted(self.customers_, pairs["customer_id"].to_numpy(np.int64))
        cols = np.searchsorted(self.products_.astype(str), pairs["product_id"].to_numpy(str))
        pairs = pairs.assign(row=rows, col=cols)
        held = pairs["held"].to_numpy(bool)
        shape = (len(self.customers_), len(self.products_))
        self.held_ = sp.csr_matrix(
            (np.ones(int(held.sum()), np.float32), (rows[held], cols[held])), shape=shape
        )
        self.popularity_ = np.bincount(
            cols, weights=pairs["weight"].to_numpy(float), minlength=shape[1]
        )
        self._fit(pairs, side_features, product_features)
        self.fitted_at_ = datetime.now(UTC).isoformat(timespec="seconds")
        self.data_window_ = _data_window(interactions)
        return self

    def _customer_rows(self, customer_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each customer in ``customers_`` and whether it is there."""
        pos = np.searchsorted(self.customers_, customer_ids)
        pos = np.minimum(pos, len(self.customers_) - 1)
        return pos, self.customers_[pos] == customer_ids

    def recommend(
        self, customer_ids: Sequence[int] | np.ndarray, k: int = 5, exclude_held: bool = True
    ) -> pd.DataFrame:
        """The ``k`` best products for each customer.

        Parameters
        ----------
        customer_ids : sequence of int
            Duplicates are recommended once. Customers the model cannot score get the
            popularity ranking.
        k : int >= 1, default=5
        exclude_held : bool, default=True
            Never recommend a product the customer holds.

        Returns
        -------
        DataFrame
            :data:`RECOMMENDATION_COLUMNS`, ``rank`` 1..k, best first, ordered by customer as
            given; fewer than ``k`` rows for a customer who holds nearly everything. Ties rank
            in ``products_`` order.
        """
        check_is_fitted(self, "products_")
        if not is_int(k) or k < 1:
            raise invalid_parameter("recommend", "k", "a positive int", k)
        ids = np.asarray(
            pd.unique(pd.Series(np.asarray(customer_ids)).astype("int64")), dtype=np.int64
        )
        if len(ids) == 0:
            return _empty_recommendations()
        scores = np.asarray(self._scores(ids), dtype=np.float64)
        unscored = np.isnan(scores).all(axis=1)
        scores[unscored] = self.popularity_
        if exclude_held:
            pos, known = self._customer_rows(ids)
            held = self.held_[pos[known]].toarray().astype(bool)
            block = scores[known]
            block[held] = -np.inf
            scores[known] = block
        n = min(k, scores.shape[1])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        top = np.take_along_axis(scores, order, axis=1)
        keep = np.isfinite(top).ravel()
        out = pd.DataFrame(
            {
                "customer_id": np.repeat(ids, n),
                "rank": np.tile(np.arange(1, n + 1, dtype=np.int64), len(ids)),
                "product_id": self.products_[order].ravel().astype(str),
                "score": top.ravel(),
            }
        )
        return out.loc[keep].reset_index(drop=True)

    def provenance(self) -> dict[str, Any]:
        """What the artifact records: model, parameters, data sizes, versions."""
        check_is_fitted(self, "products_")
        return {
            "kind": f"{type(self).__module__}.{type(self).__qualname__}",
            "fitted_at": self.fitted_at_,
            "data_window": self.data_window_,
            "params": {k: repr(v) for k, v in self.get_params().items()},
            "n_customers": len(self.customers_),
            "products": [str(p) for p in self.products_],
            "versions": {
                "qianmian": qianmian.__version__,
                "python": platform.python_version(),
                **self._library_versions(),
            },
        }

    def _library_versions(self) -> dict[str, str]:
        return {"numpy": np.__version__, "pandas": pd.__version__}

    def save(self, path: Path | str, *, metrics: Mapping[str, float] | None = None) -> Path:
        """Write the fitted model and its provenance (and ``metrics``, if given) to ``path``.

        One joblib file holding ``{"provenance": ..., "model": ...}``; returns the path. When
        ``path`` is a folder (as the model registry passes), the file is ``recommender.joblib``
        inside it.
        """
        target = Path(path)
        if target.is_dir():
            target = target / _FILE_IN_FOLDER
        target.parent.mkdir(parents=True, exist_ok=True)
        provenance = {**self.provenance(), "metrics": dict(metrics or {})}
        joblib.dump({"provenance": provenance, "model": self}, target)
        logger.info("Saved %s to %s", type(self).__name__, target)
        return target

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """Read a model written by :meth:`save`; refuses another kind or other library majors."""
        source = Path(path)
        if source.is_dir():
            source = source / _FILE_IN_FOLDER
        if not source.is_file():
            raise NotFoundError(f"No saved recommender at {source}; call save() first.")
        payload = joblib.load(source)
        model = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(model, cls):
            raise SchemaError(
                f"{source} holds {type(model).__name__}, not a {cls.__name__}; load it with "
                "its own class."
            )
        saved = payload["provenance"]["versions"]
        for lib, version in model._library_versions().items():
            if saved.get(lib, "").split(".")[0] != version.split(".")[0]:
                raise SchemaError(
                    f"{source} was saved with {lib} {saved.get(lib)}, this environment has "
                    f"{version}; refit the model."
                )
        return model


def _data_window(interactions: pd.DataFrame) -> dict[str, str] | None:
    """First and last event time of the training interactions (None without a ``ts`` column)."""
    if "ts" not in interactions.columns or interactions.empty:
        return None
    ts = pd.to_datetime(interactions["ts"])
    return {"first_event": ts.min().isoformat(), "last_event": ts.max().isoformat()}


def _empty_recommendations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="int64"),
            "rank": pd.Series([], dtype="int64"),
            "product_id": pd.Series([], dtype=str),
            "score": pd.Series([], dtype=float),
        }
    )
