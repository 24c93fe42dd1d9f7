"""The baseline every recommender must beat: the most-held products the customer does not hold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from qianmian.models.recommend.base import Recommender

__all__ = ["PopularityRecommender"]


class PopularityRecommender(Recommender):
    """Recommends the products with the most interaction weight across customers.

    The same ranking for everyone; with ``exclude_held=True`` each customer's held products are
    skipped. Side features are ignored.

    Examples
    --------
    >>> pairs = pd.DataFrame({"customer_id": [1, 2, 2, 3], "product_id": ["A", "A", "B", "C"]})
    >>> PopularityRecommender().fit(pairs).recommend([1, 4], k=2).to_dict("list")
    {'customer_id': [1, 1, 4, 4], 'rank': [1, 2, 1, 2], 'product_id': ['B', 'C', 'A', 'B'], \
'score': [1.0, 1.0, 2.0, 1.0]}
    """

    def _fit(
        self,
        pairs: pd.DataFrame,
        side_features: pd.DataFrame | None,
        product_features: pd.DataFrame | None,
    ) -> None:
        """Nothing beyond the counts the base class keeps (``popularity_``)."""

    def _scores(self, customer_ids: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity_, (len(customer_ids), 1))
