"""Collaborative filtering by implicit-feedback ALS (Hu, Koren & Volinsky), via ``implicit``.

The customer × product matrix holds each pair's interaction weight (a holding or an approved
application 1, an application 0.5, a click 0.25), reweighted as the ``implicit`` documentation
recommends: BM25 (``implicit.nearest_neighbours.bm25_weight``: rare products count more, a
customer's many interactions each count less) or plain confidence ``alpha · weight``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from qianmian.models.recommend.base import Recommender, is_int

__all__ = ["ALSRecommender"]

_WEIGHTINGS = ("bm25", "confidence")


class ALSRecommender(Recommender):
    """Implicit ALS matrix factorisation (``implicit.cpu.als.AlternatingLeastSquares``).

    Parameters
    ----------
    factors : int >= 1, default=32
        Latent dimensions. The catalogue has ~20 products, so the default is full rank and the
        regularisation does the smoothing; factors=32 and regularization=10 were chosen on a
        validation cutoff (2026-05-01) of the simulated bank, not on the reported test cutoff.
    regularization : float > 0, default=10.0
    alpha : float > 0, default=1.0
        Confidence scale on the (weighted) matrix: ``C = 1 + alpha · r``.
    iterations : int >= 1, default=20
    weighting : {"bm25", "confidence"}, default="confidence"
        ``"bm25"`` applies ``bm25_weight(K1=bm25_k1, B=bm25_b)`` to the customer × product
        matrix (customers as documents, products as terms) before fitting.
    bm25_k1 : float > 0, default=100.0
    bm25_b : float in [0, 1], default=0.8
    num_threads : int >= 1, default=2
    random_state : int, default=0

    Attributes
    ----------
    model_ : implicit.cpu.als.AlternatingLeastSquares
    user_items_ : scipy.sparse.csr_matrix
        The weighted matrix the model was fitted on.

    Examples
    --------
    >>> pairs = pd.DataFrame({"customer_id": [1, 1, 2, 2, 3], "product_id": list("ABABA")})
    >>> als = ALSRecommender(factors=2, regularization=0.1, iterations=5).fit(pairs)
    >>> als.recommend([3], k=1)["product_id"].tolist()
    ['B']
    """

    def __init__(
        self,
        factors: int = 32,
        regularization: float = 10.0,
        alpha: float = 1.0,
        iterations: int = 20,
        weighting: str = "confidence",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        num_threads: int = 2,
        random_state: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads
        self.random_state = random_state

    def _check_params(self) -> None:
        for name in ("factors", "iterations", "num_threads"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise self._invalid(name, "a positive int")
        for name in ("regularization", "alpha", "bm25_k1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise self._invalid(name, "a positive float")
        b = self.bm25_b
        if isinstance(b, bool) or not isinstance(b, int | float) or not 0 <= b <= 1:
            raise self._invalid("bm25_b", "a float in [0, 1]")
        if self.weighting not in _WEIGHTINGS:
            raise self._invalid("weighting", "one of 'bm25', 'confidence'")
        if not is_int(self.random_state):
            raise self._invalid("random_state", "an int")

    def _fit(
        self,
        pairs: pd.DataFrame,
        side_features: pd.DataFrame | None,
        product_features: pd.DataFrame | None,
    ) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import bm25_weight

        shape = (len(self.customers_), len(self.products_))
        matrix = sp.csr_matrix(
            (pairs["weight"].to_numpy(np.float32), (pairs["row"], pairs["col"])), shape=shape
        )
        if self.weighting == "bm25":
            matrix = bm25_weight(matrix, K1=self.bm25_k1, B=self.bm25_b).tocsr()
        self.user_items_ = matrix.astype(np.float32)
        # implicit asks for a single-threaded BLAS: its own threads do the work.
        with threadpool_limits(1, "blas"):
            self.model_ = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                num_threads=self.num_threads,
                random_state=self.random_state,
            )
            self.model_.fit(self.user_items_, show_progress=False)

    def _scores(self, customer_ids: np.ndarray) -> np.ndarray:
        pos, known = self._customer_rows(customer_ids)
        n_products = len(self.products_)
        out = np.full((len(customer_ids), n_products), np.nan)
        if known.any():
            rows = pos[known]
            ids, scores = self.model_.recommend(
                rows, self.user_items_[rows], N=n_products, filter_already_liked_items=False
            )
            block = np.full((len(rows), n_products), np.nan)
            np.put_along_axis(block, ids.astype(np.int64), scores.astype(float), axis=1)
            out[known] = block
        return out

    def _library_versions(self) -> dict[str, str]:
        import implicit

        return {**super()._library_versions(), "implicit": implicit.__version__}
