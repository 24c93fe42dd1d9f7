"""The record ↔ identifier graph of identity resolution, and the split of national-ID conflicts.

Records and identifier values are the nodes; an edge says a record carries a value. Customers
are the connected components over the active (non-hub) edges. :func:`split_conflicts` removes
links type by type, weakest first (:data:`WEAK_LINK_ORDER`), inside the components that hold two
national ID numbers, until none does. :func:`qianmian.data.identity.resolve_identities` builds
the graph and numbers the customers.

>>> import numpy as np
>>> g = IdentifierGraph(2, np.array([0]), np.array([0]), np.array([0, 1]), np.array([0, 0]))
>>> g.components(np.array([True, True])).tolist()  # two records sharing one value
[0, 0, 0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from qianmian.data.schema.vocab import IDENTIFIER_TYPES

__all__ = [
    "ID_TYPES",
    "WEAK_LINK_ORDER",
    "IdentifierGraph",
    "encode_sorted",
    "split_conflicts",
    "unique_sorted",
]

#: Link types removed, weakest first, to split a component holding two national IDs.
WEAK_LINK_ORDER = ("device_id", "email", "mobile", "app_user_id", "card_number")
#: Identifier types in the data dictionary's order; a type's code in the graph is its position.
ID_TYPES = IDENTIFIER_TYPES.values


def encode_sorted(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Codes of ``values`` into their sorted distinct values (nulls get code -1)."""
    encoded = pc.dictionary_encode(values)
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    codes = np.where(
        pc.is_valid(encoded.indices).to_numpy(zero_copy_only=False),
        rank[np.nan_to_num(indices, nan=0).astype(np.int64)],
        -1,
    )
    return codes, encoded.dictionary.take(pa.array(order))


def unique_sorted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct ``keys``, the index of each key's first occurrence, and the inverse.

    (``np.unique`` hashes integer keys in numpy 2.4, several times slower than one sort.)
    """
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    new = np.empty(keys.size, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    inverse = np.empty(keys.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], order[new], inverse


@dataclass(frozen=True, slots=True)
class IdentifierGraph:
    """Records 0..n_rec-1 and identifier values, joined by distinct (record, value) edges."""

    n_rec: int
    ident_type: np.ndarray  # type code of each identifier value
    ident_value: np.ndarray  # code of each identifier value's normalised text
    rec: np.ndarray  # edge -> record
    ident: np.ndarray  # edge -> identifier value

    def components(self, active: np.ndarray) -> np.ndarray:
        """Component label of each node (records first, then identifier values), over the edges
        where ``active`` is true."""
        n = self.n_rec + self.ident_type.size
        graph = sparse.coo_matrix(
            (
                np.ones(int(active.sum()), dtype=np.int8),
                (self.rec[active], self.n_rec + self.ident[active]),
            ),
            shape=(n, n),
        ).tocsr()
        return connected_components(graph, directed=False)[1]


def split_conflicts(
    g: IdentifierGraph, active: np.ndarray, names: pa.Array
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Final and first component labels, and a report row per component with two national IDs."""
    nid = np.flatnonzero(g.ident_type == ID_TYPES.index("national_id"))
    nid = nid[np.isin(nid, g.ident[active])]  # hub ID numbers link nothing
    labels = first = g.components(active)
    n_nodes = labels.size

    def conflicting(labels: np.ndarray) -> np.ndarray:
        return np.bincount(labels[g.n_rec + nid], minlength=n_nodes) > 1

    bad = first_bad = conflicting(labels)
    cuts: list[tuple[str, np.ndarray]] = []
    for link_type in WEAK_LINK_ORDER:
        if not bad.any():
            break
        cut = active & bad[labels[g.rec]] & (g.ident_type[g.ident] == ID_TYPES.index(link_type))
        if cut.any():
            active = active & ~cut
            cuts.append((link_type, np.unique(first[g.rec[cut]])))
            labels = g.components(active)
            bad = conflicting(labels)
    comps = np.flatnonzero(first_bad)
    in_comp = first_bad[first[g.n_rec + nid]]
    text = names.take(pa.array(g.ident_value[nid[in_comp]])).to_numpy(zero_copy_only=False)
    ids = pd.Series(text).groupby(first[g.n_rec + nid[in_comp]]).agg(lambda v: ",".join(sorted(v)))
    unresolved = (
        pd.Series(bad[labels[g.n_rec + nid[in_comp]]]).groupby(first[g.n_rec + nid[in_comp]]).any()
    )
    report = pd.DataFrame(
        {
            "component": comps,
            "national_ids": ids.reindex(comps).to_numpy(),
            "records": np.bincount(first[: g.n_rec], minlength=n_nodes)[comps],
            "removed_link_types": [
                ",".join(t for t, touched in cuts if c in touched) for c in comps
            ],
            "resolved": ~unresolved.reindex(comps).to_numpy(dtype=bool),
        }
    )
    return labels, first, report
