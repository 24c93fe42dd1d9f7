"""Unified customer ID: resolve identifier sightings from many systems into customers.

A *sighting* says that record ``source_record_id`` of system ``source`` (core_banking,
card_system, app, crm, wechat ...) carries identifier ``id_value`` of type ``id_type``. Records
that share an identifier value (after normalisation) belong to the same customer, transitively:
customers are the connected components of the bipartite graph records ↔ identifier values.

Two guards keep the graph from gluing different people together:

* **Hub identifiers.** A value seen on more than ``max_records_per_identifier`` distinct records
  (a family tablet, a call centre's fixed line, a placeholder like ``test@test.com``) links
  nothing and is reported in ``hub_identifiers``.
* **National ID conflicts.** A customer never holds two national ID numbers. When a component
  does, its weakest links are removed type by type, in the order of :data:`WEAK_LINK_ORDER`
  (``device_id``, then ``email``, then ``mobile``, ``app_user_id``, ``card_number``), only inside
  the conflicting components and only until the conflict is gone; each conflict is reported. A
  whole type goes at once, so records tied to their owner only by that type become customers
  of their own: the rule prefers splitting one person to joining two. A single record carrying
  two ID numbers cannot be split and is reported as unresolved.

Customer ids are 1, 2, 3 ... in the order of each customer's smallest (source,
source_record_id), compared as strings, so the result does not depend on the input's row order.
With an ``existing`` mapping, customers keep their previous ids (see :func:`resolve_identities`).
The graph and the conflict split live in :mod:`qianmian.data.identity_graph`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.data.identity_graph import (
    ID_TYPES,
    WEAK_LINK_ORDER,
    IdentifierGraph,
    encode_sorted,
    split_conflicts,
    unique_sorted,
)
from qianmian.errors import ValidationError

__all__ = [
    "DEFAULT_MAX_RECORDS_PER_IDENTIFIER",
    "WEAK_LINK_ORDER",
    "IdentityResolution",
    "IdentityStats",
    "normalise_identifiers",
    "resolve_identities",
]

DEFAULT_MAX_RECORDS_PER_IDENTIFIER = 20
_COLUMNS = ("source", "source_record_id", "id_type", "id_value")


@dataclass(frozen=True, slots=True)
class IdentityStats:
    """Counts describing one resolution run."""

    sightings: int
    records: int
    identifiers: int
    customers: int
    merged_customers: int  # customers made of two or more records
    hub_identifiers: int
    conflicts_split: int  # components holding two or more national IDs that were split
    conflicts_unresolved: int  # ... that could not be (one record carries two IDs)
    existing_merges: int  # existing customer ids absorbed into another existing customer


@dataclass(frozen=True)
class IdentityResolution:
    """The result of :func:`resolve_identities`.

    Attributes
    ----------
    mapping : pandas.DataFrame
        ``source``, ``source_record_id``, ``customer_id``: one row per record, sorted.
    customers : pandas.DataFrame
        ``customer_id``, ``id_type``, ``id_value`` (normalised), ``source`` (first system, by
        name, that saw it for this customer): the identifiers of each customer; hub values are
        left out. A value whose links were cut to split a conflict appears under each customer.
        Sorted by customer id, then id_type (in the data dictionary's order) and value.
    hub_identifiers : pandas.DataFrame
        ``id_type``, ``id_value``, ``records``: values ignored for linking.
    conflicts : pandas.DataFrame
        One row per component that held two or more national IDs: ``national_ids`` and
        ``customer_ids`` it became (comma separated), ``records``, ``removed_link_types``,
        ``resolved`` (false when one record carries two ID numbers).
    merges : pandas.DataFrame
        ``customer_id``, ``merged_customer_id``: existing customers joined into another one.
    stats : IdentityStats
    """

    mapping: pd.DataFrame
    customers: pd.DataFrame
    hub_identifiers: pd.DataFrame
    conflicts: pd.DataFrame
    merges: pd.DataFrame
    stats: IdentityStats


def _strings(values: Any) -> pa.Array:
    array = (
        values
        if isinstance(values, pa.Array | pa.ChunkedArray)
        else pa.array(values, from_pandas=True)
    )
    if isinstance(array, pa.ChunkedArray):  # pandas columns backed by Arrow may come chunked
        array = array.combine_chunks()
    return array.cast(pa.string())


def normalise_identifiers(id_types: Any, id_values: Any) -> pa.Array:
    """Normalise identifier values so that one identifier is always written the same way.

    Spaces are trimmed everywhere; mobiles lose spaces, dashes, brackets and a ``+86``/``0086``/
    ``86`` prefix; card and national ID numbers lose spaces and dashes, with an upper-case
    ``X``; emails and device ids are lower-cased. Empty values become null.

    Examples
    --------
    >>> normalise_identifiers(["mobile", "email", "national_id"],
    ...                       ["+86 138-1234-5678", " Li.Na@QQ.com", "11010519491231002x"]
    ...                       ).to_pylist()
    ['13812345678', 'li.na@qq.com', '11010519491231002X']
    """
    types, values = _strings(id_types), pc.utf8_trim_whitespace(_strings(id_values))
    out = values
    for id_type in ("mobile", "email", "device_id", "card_number", "national_id"):
        rows = pc.fill_null(pc.and_(pc.equal(types, id_type), pc.is_valid(values)), False)
        if not pc.any(rows).as_py():
            continue
        subset = values.filter(rows)
        if id_type in ("email", "device_id"):
            subset = pc.utf8_lower(subset)
        else:
            for separator in (" ", "-", "(", ")") if id_type == "mobile" else (" ", "-"):
                subset = pc.replace_substring(subset, separator, "")
        if id_type == "mobile":
            subset = pc.replace_substring_regex(subset, r"^(?:\+86|0086|86)(1[0-9]{10})$", r"\1")
        if id_type == "national_id":
            subset = pc.utf8_upper(subset)
        out = pc.replace_with_mask(out, rows, subset)
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def _limits(max_records: int | Mapping[str, int]) -> np.ndarray:
    given = (
        max_records if isinstance(max_records, Mapping) else dict.fromkeys(ID_TYPES, max_records)
    )
    limits = {t: DEFAULT_MAX_RECORDS_PER_IDENTIFIER for t in ID_TYPES} | dict(given)
    for id_type, limit in limits.items():
        if id_type not in ID_TYPES or not isinstance(limit, int | np.integer) or limit < 1:
            raise ValidationError(
                "The 'max_records_per_identifier' parameter of resolve_identities must be a "
                f"positive int or a mapping of identifier type to one. Got {id_type!r}: "
                f"{limit!r} instead."
            )
    return np.array([limits[t] for t in ID_TYPES])


def _columns(sightings: pd.DataFrame | pa.Table) -> dict[str, pa.Array]:
    names = sightings.column_names if isinstance(sightings, pa.Table) else sightings.columns
    missing = [c for c in _COLUMNS if c not in names]
    if missing:
        raise ValidationError(
            f"Identifier sightings need columns {', '.join(_COLUMNS)}; "
            f"{', '.join(missing)} is missing."
        )
    columns = {
        c: _strings(sightings[c] if isinstance(sightings, pd.DataFrame) else sightings.column(c))
        for c in _COLUMNS
    }
    for column in ("source", "source_record_id"):
        if columns[column].null_count:
            raise ValidationError(
                f"Column '{column}' of the identifier sightings has "
                f"{columns[column].null_count} missing values; every "
                "sighting needs its system and record id."
            )
    unknown = pc.unique(
        pc.filter(
            columns["id_type"],
            pc.invert(pc.fill_null(pc.is_in(columns["id_type"], pa.array(ID_TYPES)), False)),
        )
    )
    bad = [t for t in unknown.to_pylist() if t is not None] or (
        [None]
        if pc.any(pc.and_(pc.is_null(columns["id_type"]), pc.is_valid(columns["id_value"]))).as_py()
        else []
    )
    if bad:
        raise ValidationError(
            f"Column 'id_type' holds {bad[0]!r}, which is not one of "
            f"{', '.join(ID_TYPES)}. Map it to one of them before resolving."
        )
    return columns


def _existing_ids(
    existing: pd.DataFrame | pa.Table, mapping: pd.DataFrame
) -> tuple[np.ndarray, int]:
    """Previous customer id of each record of ``mapping`` (0 where none), and the largest."""
    if isinstance(existing, pa.Table):
        existing = existing.to_pandas()
    missing = [c for c in ("source", "source_record_id", "customer_id") if c not in existing]
    if missing:
        raise ValidationError(
            f"The existing mapping needs columns source, source_record_id, "
            f"customer_id; {', '.join(missing)} is missing."
        )
    old = pd.DataFrame(
        {
            "source": existing["source"].astype(str),
            "source_record_id": existing["source_record_id"].astype(str),
            "old": pd.to_numeric(existing["customer_id"]).astype(np.int64),
        }
    )
    if old.duplicated(["source", "source_record_id"]).any():
        raise ValidationError(
            "The existing mapping lists a (source, source_record_id) twice; "
            "each record must map to one customer."
        )
    joined = mapping[["source", "source_record_id"]].merge(old, how="left", validate="1:1")
    largest = int(old["old"].max()) if len(old) else 0
    return joined["old"].fillna(0).to_numpy(dtype=np.int64), largest


def _assign_ids(
    cust: np.ndarray, n_cust: int, old: np.ndarray | None, max_old: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """Customer id of each customer index, keeping previous ids; and the merges."""
    merges = pd.DataFrame(
        {"customer_id": pd.Series(dtype=np.int64), "merged_customer_id": pd.Series(dtype=np.int64)}
    )
    if old is None or not (old > 0).any():
        return np.arange(1, n_cust + 1) + (max_old if old is not None else 0), merges
    seen = pd.DataFrame({"rec": np.flatnonzero(old > 0), "old": old[old > 0]})
    # an old id goes to the customer holding its smallest record; each keeps its smallest
    owner = seen.groupby("old")["rec"].min()
    owned = pd.DataFrame({"cust": cust[owner.to_numpy()], "old": owner.index.to_numpy()})
    kept = owned.groupby("cust")["old"].min()
    ids = np.zeros(n_cust, dtype=np.int64)
    ids[kept.index.to_numpy()] = kept.to_numpy()
    fresh = ids == 0
    ids[fresh] = max_old + 1 + np.arange(int(fresh.sum()))
    lost = owned[~owned["old"].isin(kept.to_numpy())]
    merges = pd.DataFrame(
        {"customer_id": ids[lost["cust"].to_numpy()], "merged_customer_id": lost["old"].to_numpy()}
    )
    return ids, merges.sort_values(["customer_id", "merged_customer_id"], ignore_index=True)


def resolve_identities(
    sightings: pd.DataFrame | pa.Table,
    *,
    max_records_per_identifier: int | Mapping[str, int] = DEFAULT_MAX_RECORDS_PER_IDENTIFIER,
    existing: pd.DataFrame | pa.Table | None = None,
) -> IdentityResolution:
    """Resolve identifier sightings into customers with a unified customer id.

    Parameters
    ----------
    sightings : pandas.DataFrame or pyarrow.Table
        Columns ``source``, ``source_record_id``, ``id_type`` (one of mobile, email,
        device_id, app_user_id, card_number, national_id) and ``id_value``; other columns are
        ignored. A record with no usable identifier becomes a customer of its own.
    max_records_per_identifier : int or mapping of id_type to int, default 20
        A value seen on more distinct records than this links nothing (a hub). A mapping sets
        the limit per type; types it leaves out keep the default.
    existing : pandas.DataFrame or pyarrow.Table, optional
        A previous ``mapping`` (source, source_record_id, customer_id). Each previous id stays
        with the customer holding its smallest record; a customer holding several keeps the
        smallest and the others are reported in ``merges``; new customers are numbered above
        the largest previous id.

    Returns
    -------
    IdentityResolution

    Examples
    --------
    >>> sightings = pd.DataFrame({
    ...     "source": ["card_system", "card_system", "app", "app", "crm"],
    ...     "source_record_id": ["C1", "C1", "A9", "A9", "K3"],
    ...     "id_type": ["card_number", "mobile", "mobile", "device_id", "email"],
    ...     "id_value": ["6225881234567898", "13812345678", "+86 138-1234-5678", "dev-1",
    ...                  "x@qq.com"]})
    >>> result = resolve_identities(sightings)
    >>> result.mapping.to_dict("list")["customer_id"], result.stats.customers
    ([1, 1, 2], 2)
    """
    limits = _limits(max_records_per_identifier)
    cols = _columns(sightings)
    src, src_names = encode_sorted(cols["source"])
    rid, rid_names = encode_sorted(cols["source_record_id"])
    width = max(len(rid_names), 1)
    rec_keys, _, rec = unique_sorted(src * width + rid)  # sorted by (source, source_record_id)
    values = normalise_identifiers(cols["id_type"], cols["id_value"])
    val, val_names = encode_sorted(values)
    valid = val >= 0
    n_vals = max(len(val_names), 1)
    type_code = pc.fill_null(pc.index_in(cols["id_type"], value_set=pa.array(ID_TYPES)), 0)
    # identifier nodes numbered by (type, value), records by (source, id): sorted outputs
    ident_keys, _, ident = unique_sorted(type_code.to_numpy()[valid] * n_vals + val[valid])
    n_ident = max(ident_keys.size, 1)
    edges = unique_sorted(rec[valid] * n_ident + ident)[0]
    g = IdentifierGraph(
        rec_keys.size, ident_keys // n_vals, ident_keys % n_vals, edges // n_ident, edges % n_ident
    )
    records_per_ident = np.bincount(g.ident, minlength=ident_keys.size)
    hub = records_per_ident > limits[g.ident_type]
    labels, first, conflicts = split_conflicts(g, ~hub[g.ident], val_names)

    # customers numbered by their smallest record
    comp_labels, first_rec, _ = unique_sorted(labels[: g.n_rec])
    rank = np.empty(comp_labels.size, dtype=np.int64)
    rank[np.argsort(first_rec, kind="stable")] = np.arange(comp_labels.size)
    cust = rank[np.searchsorted(comp_labels, labels[: g.n_rec])]
    rec_source = src_names.take(pa.array(rec_keys // width))
    mapping = pa.table(
        {"source": rec_source, "source_record_id": rid_names.take(pa.array(rec_keys % width))}
    ).to_pandas()
    old, max_old = None, 0
    if existing is not None:
        old, max_old = _existing_ids(existing, mapping)
    ids, merges = _assign_ids(cust, comp_labels.size, old, max_old)
    mapping["customer_id"] = ids[cust]

    # edges are sorted by record, so the first edge of a (customer, value) has its first source
    keep = ~hub[g.ident]
    key, at, _ = unique_sorted(cust[g.rec[keep]] * n_ident + g.ident[keep])
    order = np.argsort(ids[key // n_ident], kind="stable")  # by customer id, then value
    key, at = key[order], at[order]
    ident_kept = key % n_ident
    customers = pa.table(
        {
            "customer_id": ids[key // n_ident],
            "id_type": pa.array(ID_TYPES).take(pa.array(g.ident_type[ident_kept])),
            "id_value": val_names.take(pa.array(g.ident_value[ident_kept])),
            "source": rec_source.take(pa.array(g.rec[keep][at])),
        }
    ).to_pandas()
    hubs = pa.table(
        {
            "id_type": pa.array(ID_TYPES).take(pa.array(g.ident_type[hub])),
            "id_value": val_names.take(pa.array(g.ident_value[hub])),
            "records": records_per_ident[hub],
        }
    ).to_pandas()
    in_conflict = np.isin(first[: g.n_rec], conflicts["component"].to_numpy())
    split = (
        pd.Series(ids[cust[in_conflict]])
        .groupby(first[: g.n_rec][in_conflict])
        .agg(lambda v: ",".join(map(str, sorted(set(v)))))
    )
    conflicts.insert(1, "customer_ids", split.reindex(conflicts["component"]).to_numpy())
    stats = IdentityStats(
        sightings=len(cols["source"]),
        records=g.n_rec,
        identifiers=ident_keys.size,
        customers=comp_labels.size,
        merged_customers=int((np.bincount(cust, minlength=comp_labels.size) > 1).sum()),
        hub_identifiers=int(hub.sum()),
        conflicts_split=int(conflicts["resolved"].sum()),
        conflicts_unresolved=int((~conflicts["resolved"]).sum()),
        existing_merges=len(merges),
    )
    return IdentityResolution(
        mapping, customers, hubs, conflicts.drop(columns="component"), merges, stats
    )
