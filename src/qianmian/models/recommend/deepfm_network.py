"""The DeepFM network (Guo et al., 2017): a factorisation machine and an MLP on shared embeddings.

Each categorical field (customer bands, product id and type ...) has an embedding per value and
a first-order weight; each numeric field (scaled to [0, 1]) has one embedding multiplied by its
value, as in the paper's treatment of dense features. The logit is

``bias + Σ first-order + ½ Σ_d [(Σ_f e_fd)² − Σ_f e_fd²] + MLP(concat e_f)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["DeepFMNetwork"]


class DeepFMNetwork(nn.Module):
    """Logits of (customer, product) rows.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of values of each categorical field (value 0 is "unknown").
    n_numeric : int
        Number of numeric fields.
    embedding_dim : int
    hidden_units : sequence of int
        Widths of the MLP's hidden layers.
    dropout : float
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_numeric: int,
        embedding_dim: int,
        hidden_units: Sequence[int],
        dropout: float,
    ) -> None:
        super().__init__()
        sizes = torch.tensor([0, *cardinalities[:-1]], dtype=torch.long)
        self.offsets: torch.Tensor
        self.register_buffer("offsets", torch.cumsum(sizes, dim=0))
        total = int(sum(cardinalities))
        self.embedding = nn.Embedding(total, embedding_dim)
        self.first_order = nn.Embedding(total, 1)
        nn.init.normal_(self.embedding.weight, std=0.01)
        nn.init.zeros_(self.first_order.weight)
        self.numeric_embedding = nn.Parameter(torch.randn(n_numeric, embedding_dim) * 0.01)
        self.numeric_first_order = nn.Linear(n_numeric, 1) if n_numeric else None
        self.bias = nn.Parameter(torch.zeros(1))
        layers: list[nn.Module] = []
        width = (len(cardinalities) + n_numeric) * embedding_dim
        for units in hidden_units:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch,) from ``categorical`` (batch, n_cat) long codes and
        ``numeric`` (batch, n_numeric) floats."""
        index = categorical + self.offsets
        fields = self.embedding(index)
        first = self.first_order(index).sum(dim=(1, 2)) + self.bias
        if self.numeric_first_order is not None:
            fields = torch.cat([fields, numeric.unsqueeze(-1) * self.numeric_embedding], dim=1)
            first = first + self.numeric_first_order(numeric).squeeze(-1)
        summed = fields.sum(dim=1)
        pairwise = 0.5 * (summed.pow(2) - fields.pow(2).sum(dim=1)).sum(dim=1)
        deep = self.mlp(fields.flatten(start_dim=1)).squeeze(-1)
        return first + pairwise + deep
