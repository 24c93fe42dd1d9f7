"""Is a targeting model fair across customer groups? Group metrics and parity tests with Fairlearn.

For each sensitive attribute (age band, gender, city tier) :func:`fairness_report` tabulates, per
group, the number of customers, the selection rate (share the model targets), the true- and
false-positive rates and, given scores, the AUC; then Fairlearn's demographic-parity ratio (lowest
over highest selection rate) and equalized-odds difference (largest gap in TPR or FPR between
groups). An attribute is flagged when the ratio is below ``dp_threshold`` (0.8, the "four-fifths
rule") or the difference above ``eo_threshold`` (0.1).

Typical use, with the customers a campaign model scored::

    sensitive = sensitive_attributes(customers, as_of).loc[scored["customer_id"]]
    report = fairness_report(scored["applied"], scored["selected"], sensitive,
                             y_score=scored["score"])
    report.flagged          # e.g. ['age_band: demographic-parity ratio 0.31 < 0.8 ...']
    report.to_markdown(); report.figure()

The arrays and the ``sensitive`` frame are matched by position, not by index.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from plotly.subplots import make_subplots
from sklearn.metrics import roc_auc_score

from qianmian.data.schema.vocab import CITY_TIERS, GENDERS
from qianmian.errors import SchemaError, ValidationError, invalid_parameter

__all__ = [
    "AGE_BANDS",
    "SENSITIVE_ATTRIBUTES",
    "AttributeFairness",
    "FairnessReport",
    "fairness_report",
    "sensitive_attributes",
]

logger = logging.getLogger(__name__)

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
SENSITIVE_ATTRIBUTES = ("age_band", "gender", "city_tier")
UNKNOWN = "unknown"
_AGE_EDGES = [-np.inf, 18, 25, 35, 45, 55, 65, np.inf]
_AGE_LABELS = ["<18", *AGE_BANDS]
_ORDER = {g: i for i, g in enumerate([*_AGE_LABELS, *CITY_TIERS.values, *GENDERS.values])}
_SOURCE = {"age_band": "birth_date", "gender": "gender", "city_tier": "city_tier"}
_GROUP_COLUMNS = ["count", "selection_rate", "tpr", "fpr"]


def sensitive_attributes(
    customers: pd.DataFrame | Any,
    as_of: date | datetime | str,
    attributes: Sequence[str] = SENSITIVE_ATTRIBUTES,
) -> pd.DataFrame:
    """Age band, gender and city tier of each customer, from the ``customers`` table.

    Parameters
    ----------
    customers : DataFrame or pyarrow Table
        With ``customer_id`` and the source columns (``birth_date``, ``gender``, ``city_tier``).
    as_of : date
        Ages are completed years at this date.
    attributes : sequence of str
        Any of ``age_band``, ``gender``, ``city_tier``.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``, one string column per attribute; missing values are
        ``"unknown"``. Age bands are 18-24, 25-34, 35-44, 45-54, 55-64, 65+ (and <18).

    Examples
    --------
    >>> frame = pd.DataFrame({"customer_id": [1, 2], "birth_date": ["2002-08-02", "1961-08-01"],
    ...                       "gender": ["F", None], "city_tier": ["一线", "三线"]})
    >>> sensitive_attributes(frame, "2026-08-01").to_dict(orient="index")
    {1: {'age_band': '18-24', 'gender': 'F', 'city_tier': '一线'}, \
2: {'age_band': '65+', 'gender': 'unknown', 'city_tier': '三线'}}
    """
    frame = customers if isinstance(customers, pd.DataFrame) else customers.to_pandas()
    unknown = [a for a in attributes if a not in _SOURCE]
    if unknown or not attributes:
        raise invalid_parameter(
            "sensitive_attributes",
            "attributes",
            f"a non-empty subset of {SENSITIVE_ATTRIBUTES}",
            list(attributes),
        )
    needed = ["customer_id", *(_SOURCE[a] for a in attributes)]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"The customers table has no column {', '.join(missing)}, needed for "
            f"{', '.join(attributes)}; map it at import or leave the attribute out."
        )
    at = pd.Timestamp(as_of)
    out = pd.DataFrame(index=pd.Index(frame["customer_id"], name="customer_id"))
    for attribute in attributes:
        if attribute == "age_band":
            born = pd.to_datetime(frame["birth_date"], errors="coerce")
            before_birthday = (born.dt.month > at.month) | (
                (born.dt.month == at.month) & (born.dt.day > at.day)
            )
            age = at.year - born.dt.year - before_birthday.astype(int)
            band = pd.cut(age, _AGE_EDGES, right=False, labels=_AGE_LABELS)
            values = band.astype(str).where(born.notna(), UNKNOWN)
        else:
            column = frame[_SOURCE[attribute]]
            values = column.astype(str).where(column.notna(), UNKNOWN)
        out[attribute] = values.to_numpy(dtype=object)
    return out


@dataclass(frozen=True)
class AttributeFairness:
    """Group metrics and parity tests for one sensitive attribute.

    ``groups`` is indexed by group with columns count, selection_rate, tpr, fpr (and auc).
    Groups smaller than the report's ``min_group_size`` are listed in ``excluded`` and left out
    of the ratio and the difference.
    """

    attribute: str
    groups: pd.DataFrame
    demographic_parity_ratio: float
    equalized_odds_difference: float
    dp_flag: bool
    eo_flag: bool
    excluded: tuple[str, ...] = ()

    def reasons(self, dp_threshold: float, eo_threshold: float) -> list[str]:
        """Why the attribute is flagged, one sentence per test failed."""
        kept = self.groups.drop(index=list(self.excluded))
        out = []
        if self.dp_flag:
            rates = kept["selection_rate"]
            out.append(
                f"{self.attribute}: demographic-parity ratio {self.demographic_parity_ratio:.2f} "
                f"< {dp_threshold} (selection rate {rates.idxmin()} {rates.min():.3f} vs "
                f"{rates.idxmax()} {rates.max():.3f})"
            )
        if self.eo_flag:
            gaps = {k: kept[k].max() - kept[k].min() for k in ("tpr", "fpr")}
            worst = max(gaps, key=lambda k: gaps[k])
            out.append(
                f"{self.attribute}: equalized-odds difference "
                f"{self.equalized_odds_difference:.2f} > {eo_threshold} ({worst.upper()} "
                f"{kept[worst].idxmin()} {kept[worst].min():.3f} vs {kept[worst].idxmax()} "
                f"{kept[worst].max():.3f})"
            )
        return out


@dataclass(frozen=True)
class FairnessReport:
    """Per-attribute fairness of one model's selections (see :func:`fairness_report`)."""

    attributes: tuple[AttributeFairness, ...]
    overall: dict[str, float]
    dp_threshold: float = 0.8
    eo_threshold: float = 0.1
    notes: tuple[str, ...] = field(default=())

    def __getitem__(self, attribute: str) -> AttributeFairness:
        for a in self.attributes:
            if a.attribute == attribute:
                return a
        raise KeyError(attribute)

    @property
    def flagged(self) -> list[str]:
        """One sentence per failed test; empty when every attribute passes."""
        return [r for a in self.attributes for r in a.reasons(self.dp_threshold, self.eo_threshold)]

    @property
    def passed(self) -> bool:
        return not self.flagged

    def summary(self) -> pd.DataFrame:
        """One row per attribute: ratio, difference, flags, groups compared."""
        return pd.DataFrame(
            [
                {
                    "attribute": a.attribute,
                    "demographic_parity_ratio": a.demographic_parity_ratio,
                    "equalized_odds_difference": a.equalized_odds_difference,
                    "dp_flag": a.dp_flag,
                    "eo_flag": a.eo_flag,
                    "groups": len(a.groups) - len(a.excluded),
                    "excluded": ", ".join(a.excluded),
                }
                for a in self.attributes
            ]
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per (attribute, group) with the group metrics and the attribute's tests."""
        parts = []
        for a in self.attributes:
            part = a.groups.rename_axis("group").reset_index()
            part.insert(0, "attribute", a.attribute)
            part["excluded"] = part["group"].isin(a.excluded)
            part["demographic_parity_ratio"] = a.demographic_parity_ratio
            part["equalized_odds_difference"] = a.equalized_odds_difference
            part["dp_flag"], part["eo_flag"] = a.dp_flag, a.eo_flag
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def to_markdown(self) -> str:
        """The report as Markdown: the verdict, a summary table and one table per attribute."""
        lines = ["## Fairness report / 公平性报告", ""]
        lines.append(
            f"Thresholds: demographic-parity ratio ≥ {self.dp_threshold}, equalized-odds "
            f"difference ≤ {self.eo_threshold}. Overall selection rate "
            f"{self.overall['selection_rate']:.3f} over {int(self.overall['count']):,} customers."
        )
        lines.append("")
        flagged = self.flagged
        lines += [f"- ⚠ {r}" for r in flagged] if flagged else ["- ✓ No attribute is flagged."]
        lines += [*(f"- {n}" for n in self.notes), ""]
        summary = self.summary().drop(columns="excluded")
        for col in ("dp_flag", "eo_flag"):
            summary[col] = summary[col].map({True: "⚠", False: ""})
        lines += [_markdown_table(summary), ""]
        for a in self.attributes:
            lines += [f"### {a.attribute}", "", _markdown_table(a.groups.reset_index()), ""]
        return "\n".join(lines)

    def figure(self) -> go.Figure:
        """Selection rate by group, one panel per attribute, with the four-fifths line.

        The dashed line is ``dp_threshold`` times the highest group's rate; red bars are groups
        below it.
        """
        fig = make_subplots(
            rows=1,
            cols=len(self.attributes),
            subplot_titles=[
                f"{a.attribute} — DP ratio {a.demographic_parity_ratio:.2f}"
                f"{' ⚠' if a.dp_flag else ''}"
                for a in self.attributes
            ],
        )
        for i, a in enumerate(self.attributes, start=1):
            rates = a.groups["selection_rate"]
            compared = rates.drop(index=list(a.excluded))
            line = self.dp_threshold * float(compared.max()) if len(compared) else 0.0
            fig.add_trace(
                go.Bar(
                    x=[str(g) for g in rates.index],
                    y=rates.to_numpy(),
                    name=a.attribute,
                    marker_color=["#d62728" if r < line else "#1f77b4" for r in rates],
                    customdata=a.groups["count"].to_numpy(),
                    hovertemplate="%{x}: %{y:.3f} (n=%{customdata:,})<extra></extra>",
                    showlegend=False,
                ),
                row=1,
                col=i,
            )
            fig.add_hline(
                y=line,
                line_dash="dash",
                line_color="#444",
                annotation_text=f"{self.dp_threshold:g} × highest",
                annotation_position="top left",
                row=1,  # type: ignore[arg-type]
                col=i,  # type: ignore[arg-type]
            )
        fig.update_yaxes(title_text="selection rate", tickformat=".0%", row=1, col=1)
        fig.update_layout(title="Selection rate by group (fairness)", bargap=0.3)
        return fig


def fairness_report(
    y_true: Any,
    y_pred: Any,
    sensitive: pd.DataFrame,
    *,
    y_score: Any = None,
    dp_threshold: float = 0.8,
    eo_threshold: float = 0.1,
    min_group_size: int = 1,
) -> FairnessReport:
    """Group metrics, demographic parity and equalized odds for each sensitive attribute.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed outcome, 0/1.
    y_pred : array-like of shape (n,)
        The model's selection, 0/1 (e.g. targeted by the campaign).
    sensitive : DataFrame of shape (n, k)
        One column per attribute (see :func:`sensitive_attributes`), matched by position.
    y_score : array-like of shape (n,), optional
        Scores, for the per-group AUC.
    dp_threshold : float in (0, 1]
        An attribute is flagged when its demographic-parity ratio is below this.
    eo_threshold : float in [0, 1]
        An attribute is flagged when its equalized-odds difference is above this.
    min_group_size : int
        Groups with fewer customers are shown but left out of the ratio and difference.

    Returns
    -------
    FairnessReport

    Examples
    --------
    >>> report = fairness_report([1, 0, 1, 0], [1, 1, 1, 0],
    ...                          pd.DataFrame({"gender": ["F", "F", "M", "M"]}))
    >>> report["gender"].demographic_parity_ratio, report.flagged
    (0.5, ['gender: demographic-parity ratio 0.50 < 0.8 (selection rate M 0.500 vs F 1.000)', \
'gender: equalized-odds difference 1.00 > 0.1 (FPR M 0.000 vs F 1.000)'])
    """
    if not 0 < dp_threshold <= 1:
        raise invalid_parameter("fairness_report", "dp_threshold", "in (0, 1]", dp_threshold)
    if not 0 <= eo_threshold <= 1:
        raise invalid_parameter("fairness_report", "eo_threshold", "in [0, 1]", eo_threshold)
    if (
        isinstance(min_group_size, bool)
        or not isinstance(min_group_size, int)
        or min_group_size < 1
    ):
        raise invalid_parameter(
            "fairness_report", "min_group_size", "a positive int", min_group_size
        )
    truth, chosen = _binary("y_true", y_true), _binary("y_pred", y_pred)
    score = None if y_score is None else np.asarray(y_score, dtype=float).ravel()
    if not isinstance(sensitive, pd.DataFrame) or sensitive.shape[1] == 0:
        raise ValidationError("sensitive must be a DataFrame with one column per attribute.")
    sizes = {"y_true": len(truth), "y_pred": len(chosen), "sensitive": len(sensitive)}
    if score is not None:
        sizes["y_score"] = len(score)
    if len(set(sizes.values())) != 1 or len(truth) == 0:
        raise ValidationError(
            f"y_true, y_pred, sensitive (and y_score) need the same, non-zero number of rows. "
            f"Got {sizes} instead."
        )
    overall: dict[str, float] = {}
    attributes = []
    for column in sensitive.columns:
        labels = sensitive[column].astype(object).where(sensitive[column].notna(), UNKNOWN)
        groups = labels.astype(str).to_numpy()
        frame = _rate_frame(groups, truth, chosen)
        table = frame.by_group.astype(float)
        overall = {k: float(v) for k, v in frame.overall.items()}
        if score is not None:  # scikit-learn's AUC on each group's rows
            rows = pd.Series(groups).groupby(groups).indices
            table["auc"] = pd.Series({g: _auc(truth[i], score[i]) for g, i in rows.items()})
            overall["auc"] = _auc(truth, score)
        table["count"] = table["count"].round().astype(int)
        table = table.loc[sorted(table.index, key=_group_key)].rename_axis(str(column))
        excluded = tuple(str(g) for g in table.index[table["count"] < min_group_size])
        if len(table) - len(excluded) < 2:
            dp, eo = float("nan"), float("nan")
            logger.warning("attribute %s has fewer than two groups to compare", column)
        else:
            if excluded:  # compare the remaining groups only
                kept = ~np.isin(groups, excluded)
                frame = _rate_frame(groups[kept], truth[kept], chosen[kept])
            # what demographic_parity_ratio and equalized_odds_difference compute
            dp = float(frame.ratio(method="between_groups")["selection_rate"])
            eo = float(frame.difference(method="between_groups")[["tpr", "fpr"]].max())
        attributes.append(
            AttributeFairness(
                attribute=str(column),
                groups=table,
                demographic_parity_ratio=dp,
                equalized_odds_difference=eo,
                dp_flag=bool(dp < dp_threshold),
                eo_flag=bool(eo > eo_threshold),
                excluded=excluded,
            )
        )
    notes = tuple(
        f"{a.attribute}: groups below {min_group_size} customers not compared: "
        f"{', '.join(a.excluded)}"
        for a in attributes
        if a.excluded
    )
    return FairnessReport(tuple(attributes), overall, dp_threshold, eo_threshold, notes)


def _rate_frame(groups: np.ndarray, truth: np.ndarray, chosen: np.ndarray) -> MetricFrame:
    """Count, selection rate, TPR and FPR by group, from the weighted confusion cells.

    These rates depend only on how many customers of each group fall in each (outcome,
    selection) cell, so Fairlearn gets one row per cell weighted by its size: the same numbers
    as on every customer, at a cost independent of the number of customers.
    """
    cells = (
        pd.DataFrame({"group": groups, "y_true": truth, "y_pred": chosen})
        .value_counts()
        .reset_index(name="n")
    )
    weight = {"sample_weight": cells["n"].to_numpy(dtype=float)}
    return MetricFrame(
        metrics={
            "count": _weighted_count,
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
        },
        y_true=cells["y_true"].to_numpy(),
        y_pred=cells["y_pred"].to_numpy(),
        sensitive_features=cells["group"].to_numpy(),
        sample_params={k: weight for k in ("count", "selection_rate", "tpr", "fpr")},
    )


def _weighted_count(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray) -> float:
    """Customers in a group: the sum of its cells' weights (Fairlearn's ``count`` ignores them)."""
    return float(np.sum(sample_weight))


def _binary(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values).ravel()
    if array.dtype == bool:
        return array.astype(int)
    try:
        numbers = array.astype(float)
    except (TypeError, ValueError):
        numbers = np.full(len(array), np.nan)
    if not np.isin(numbers, (0.0, 1.0)).all():
        bad = array[~np.isin(numbers, (0.0, 1.0))][:3].tolist()
        raise ValidationError(f"{name} must hold only 0 and 1. Got {bad} among its values.")
    return numbers.astype(int)


def _auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """ROC AUC, NaN for a group holding a single class (where it is undefined)."""
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, y_score))


def _group_key(group: object) -> tuple[int, int, str]:
    """Age bands and city tiers in their natural order, ``unknown`` last, others by name."""
    label = str(group)
    if label == UNKNOWN:
        return (2, 0, label)
    return (0, _ORDER[label], label) if label in _ORDER else (1, 0, label)


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return "–" if value != value else f"{value:.3f}"
        if isinstance(value, bool | np.bool_):
            return "yes" if value else ""
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *rows])
