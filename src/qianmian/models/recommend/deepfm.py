"""A DeepFM recommender: customer side features, product features and the customer's history.

Every customer × product interaction is a positive (weighted by its strength); each epoch draws
``n_negatives`` products per positive among those the customer never interacted with. The
network (:class:`~.deepfm_network.DeepFMNetwork`) is trained with weighted binary cross-entropy
(Adam), and training stops when the loss on a held-out share of customers has not improved for
``patience`` epochs; the best epoch's weights are kept.

Fields: the customer's side features (a frame indexed by ``customer_id``, e.g.
:func:`~.side_features.customer_side_features`, encoded by :mod:`~.deepfm_encoding`), the
product id and product features (``product_features=`` in :meth:`~DeepFMRecommender.fit`), and,
with ``use_history``, the customer's other interactions, one numeric field per product. A
customer missing from the side features is scored with those fields "unknown".

torch is imported only here: install it with ``pip install torch`` (CPU build suffices).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from qianmian.errors import ValidationError
from qianmian.models.recommend.base import Recommender, is_int
from qianmian.models.recommend.deepfm_encoding import encode_customers, encode_products

__all__ = ["DeepFMRecommender"]

logger = logging.getLogger(__name__)


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the block, then back to the caller's setting."""
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a declared dependency of models
        raise ImportError(
            "DeepFMRecommender needs PyTorch: pip install torch (the CPU build is enough)."
        ) from e
    return torch


class DeepFMRecommender(Recommender):
    """DeepFM over customer side features and product features.

    Parameters
    ----------
    embedding_dim : int >= 1, default=8
    hidden_units : sequence of int, default=(64, 32)
    dropout : float in [0, 1), default=0.1
    n_negatives : int >= 1, default=4
        Negatives drawn per positive, afresh each epoch.
    learning_rate : float > 0, default=1e-2
    weight_decay : float >= 0, default=1e-5
    batch_size : int >= 1, default=2048
    max_epochs : int >= 1, default=40
    patience : int >= 1, default=3
        Epochs without a better validation loss before stopping.
    validation_fraction : float in (0, 0.5], default=0.1
        Share of customers held out for early stopping.
    use_history : bool, default=True
        Give the network the customer's other interactions (one field per product, its
        weight): the collaborative part. When learning from a positive, that product is
        hidden from the history of the positive and of its negatives.
    n_threads : int >= 1, default=1
        ``torch.set_num_threads`` while fitting and scoring. On a shared 2-core machine two
        threads made a training step 14x slower than one (443 vs 33 ms for a batch of 1,024):
        the network is too small to gain from intra-op parallelism.
    random_state : int, default=0

    Attributes
    ----------
    network_ : DeepFMNetwork
    customer_encoding_ : EncodedCustomers
        Which side-feature columns are categorical and numeric, and every customer's codes.
    product_encoding_ : EncodedProducts
    interactions_ : scipy.sparse.csr_matrix of shape (n_customers, n_products)
        Interaction weights (the history field).
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``.
    best_epoch_ : int
    """

    def __init__(
        self,
        embedding_dim: int = 8,
        hidden_units: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        n_negatives: int = 4,
        learning_rate: float = 1e-2,
        weight_decay: float = 1e-5,
        batch_size: int = 2048,
        max_epochs: int = 40,
        patience: int = 3,
        validation_fraction: float = 0.1,
        use_history: bool = True,
        n_threads: int = 1,
        random_state: int = 0,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.n_negatives = n_negatives
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.use_history = use_history
        self.n_threads = n_threads
        self.random_state = random_state

    def _check_params(self) -> None:
        names = ("embedding_dim", "n_negatives", "batch_size", "max_epochs", "patience")
        for name in (*names, "n_threads"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise self._invalid(name, "a positive int")
        hidden = self.hidden_units
        if isinstance(hidden, str) or not all(is_int(u) and u >= 1 for u in hidden):
            raise self._invalid("hidden_units", "a sequence of positive ints")
        ranges = {
            "dropout": (0.0, 1.0, "a float in [0, 1)"),
            "learning_rate": (0.0, np.inf, "a positive float"),
            "weight_decay": (0.0, np.inf, "a float >= 0"),
            "validation_fraction": (0.0, 0.5, "a float in (0, 0.5]"),
        }
        for name, (lo, hi, must) in ranges.items():
            v = getattr(self, name)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi
            if name == "dropout":
                ok = ok and v < 1
            elif name != "weight_decay":
                ok = ok and v > 0
            if not ok:
                raise self._invalid(name, must)
        if not isinstance(self.use_history, bool):
            raise self._invalid("use_history", "a bool")
        if not is_int(self.random_state):
            raise self._invalid("random_state", "an int")

    def _inputs(
        self,
        side_rows: np.ndarray,
        customer_rows: np.ndarray,
        products: np.ndarray,
        masked: np.ndarray | None = None,
    ) -> tuple[Any, Any]:
        """Network inputs of (customer, product) rows.

        ``side_rows`` index the encoded side table, ``customer_rows`` ``customers_`` (-1: a
        customer without interactions). With ``use_history`` the customer's interactions enter
        as one numeric field per product (its weight), minus the ``masked`` product (when given)
        whose outcome the row predicts.
        """
        torch = _torch()
        customers, items = self.customer_encoding_, self.product_encoding_
        cat = np.hstack([customers.codes[side_rows], items.codes[products]])
        num = customers.values[side_rows]
        if self.use_history:
            bag = np.zeros((len(customer_rows), len(self.products_)), dtype=np.float32)
            known = customer_rows >= 0
            bag[known] = self.interactions_[customer_rows[known]].toarray()
            if masked is not None:
                bag[np.arange(len(masked)), masked] = 0.0
            num = np.hstack([num, bag])
        return torch.from_numpy(cat), torch.from_numpy(np.ascontiguousarray(num))

    # -- training ---------------------------------------------------------------------------
    def _sample(
        self, rng: np.random.Generator, pairs: pd.DataFrame, seen: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Positives plus ``n_negatives`` unseen products each.

        Every row keeps its positive's product as ``masked``: a positive and its negatives see
        the same history, without the product being predicted.
        """
        rows = pairs["row"].to_numpy()
        products = pairs["col"].to_numpy()
        n_products = len(self.products_)
        neg_rows = np.repeat(rows, self.n_negatives)
        neg_masked = np.repeat(products, self.n_negatives)
        neg = rng.integers(0, n_products, len(neg_rows))
        for _ in range(5):  # redraw the negatives that hit a product the customer interacted with
            clash = seen[neg_rows, neg]
            if not clash.any():
                break
            neg[clash] = rng.integers(0, n_products, int(clash.sum()))
        keep = ~seen[neg_rows, neg]
        return {
            "rows": np.concatenate([rows, neg_rows[keep]]),
            "products": np.concatenate([products, neg[keep]]),
            "masked": np.concatenate([products, neg_masked[keep]]),
            "labels": np.concatenate([np.ones(len(rows)), np.zeros(int(keep.sum()))]).astype(
                np.float32
            ),
            "weights": np.concatenate(
                [pairs["weight"].to_numpy(np.float32), np.ones(int(keep.sum()))]
            ).astype(np.float32),
        }

    def _loss(self, data: dict[str, np.ndarray], index: np.ndarray, loss_fn: Any) -> Any:
        """Weighted mean BCE of the rows ``index`` of ``data``."""
        torch = _torch()
        rows = data["rows"][index]
        cat, num = self._inputs(
            self.customer_side_[rows], rows, data["products"][index], data["masked"][index]
        )
        y = torch.from_numpy(data["labels"][index])
        w = torch.from_numpy(data["weights"][index])
        return (loss_fn(self.network_(cat, num), y) * w).sum() / w.sum()

    def _fit(
        self,
        pairs: pd.DataFrame,
        side_features: pd.DataFrame | None,
        product_features: pd.DataFrame | None,
    ) -> None:
        with _threads(self.n_threads):
            self._train(pairs, side_features, product_features)

    def _train(
        self,
        pairs: pd.DataFrame,
        side_features: pd.DataFrame | None,
        product_features: pd.DataFrame | None,
    ) -> None:
        torch = _torch()
        from qianmian.models.recommend.deepfm_network import DeepFMNetwork

        self.customer_encoding_ = encode_customers(side_features, self.random_state)
        self.product_encoding_ = encode_products(self.products_, product_features)
        shape = (len(self.customers_), len(self.products_))
        self.interactions_ = sp.csr_matrix(
            (pairs["weight"].to_numpy(np.float32), (pairs["row"], pairs["col"])), shape=shape
        )
        self.customer_side_ = self.customer_encoding_.rows(self.customers_)
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        seen = self.interactions_.toarray() > 0
        in_val = (rng.random(shape[0]) < self.validation_fraction)[pairs["row"].to_numpy()]
        if in_val.all() or not in_val.any():
            raise ValidationError(
                "DeepFMRecommender needs interactions from enough customers to hold "
                f"{self.validation_fraction:.0%} out for early stopping; got {shape[0]} customer(s)."
            )
        train_pairs, val = pairs.loc[~in_val], self._sample(rng, pairs.loc[in_val], seen)
        n_numeric = len(self.customer_encoding_.numeric) + (shape[1] if self.use_history else 0)
        self.network_ = DeepFMNetwork(
            [*self.customer_encoding_.cardinalities, *self.product_encoding_.cardinalities],
            n_numeric,
            self.embedding_dim,
            list(self.hidden_units),
            float(self.dropout),
        )
        optimiser = torch.optim.Adam(
            self.network_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
        best, best_state, waited = np.inf, copy.deepcopy(self.network_.state_dict()), 0
        self.history_: list[dict[str, float]] = []
        self.best_epoch_ = 0
        for epoch in range(1, self.max_epochs + 1):
            data = self._sample(rng, train_pairs, seen)
            order = rng.permutation(len(data["labels"]))
            self.network_.train()
            losses = []
            for start in range(0, len(order), self.batch_size):
                optimiser.zero_grad()
                loss = self._loss(data, order[start : start + self.batch_size], loss_fn)
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
            self.network_.eval()
            with torch.no_grad():
                val_loss = float(self._loss(val, np.arange(len(val["labels"])), loss_fn))
            self.history_.append(
                {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss}
            )
            if val_loss < best - 1e-5:
                best, best_state, waited = val_loss, copy.deepcopy(self.network_.state_dict()), 0
                self.best_epoch_ = epoch
            else:
                waited += 1
                if waited >= self.patience:
                    break
        self.network_.load_state_dict(best_state)
        self.network_.eval()
        logger.info("DeepFM stopped after %d epochs; best %d", len(self.history_), self.best_epoch_)

    # -- scoring ----------------------------------------------------------------------------
    def _scores(self, customer_ids: np.ndarray) -> np.ndarray:
        torch = _torch()
        n_products = len(self.products_)
        pos, known = self._customer_rows(customer_ids)
        customer_rows = np.where(known, pos, -1)
        side = self.customer_encoding_.rows(customer_ids)  # also for customers without interactions
        out = np.empty((len(customer_ids), n_products))
        step = max(1, 65_536 // n_products)
        with torch.no_grad(), _threads(self.n_threads):
            for start in range(0, len(customer_ids), step):
                block = slice(start, start + step)
                rows = np.repeat(customer_rows[block], n_products)
                products = np.tile(np.arange(n_products), len(rows) // n_products)
                cat, num = self._inputs(np.repeat(side[block], n_products), rows, products)
                logits = self.network_(cat, num)
                out[block] = torch.sigmoid(logits).numpy().reshape(-1, n_products)
        return out

    def _library_versions(self) -> dict[str, str]:
        import sklearn

        torch = _torch()
        return {
            **super()._library_versions(),
            "torch": torch.__version__.split("+")[0],
            "scikit-learn": sklearn.__version__,
        }
