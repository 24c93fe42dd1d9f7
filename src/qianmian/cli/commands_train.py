"""``qianmian train KIND``, ``qianmian evaluate`` and ``qianmian explain CUSTOMER_ID``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, progress_bar, state

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress

    from qianmian.models.registry import ModelCard, ModelRegistry
    from qianmian.models.train import TrainedModel
    from qianmian.models.train_sequences import SequenceModelResult
    from qianmian.store.base import Store
    from qianmian.world import World

__all__ = ["register"]

Rows = list[dict[str, object]]
Trainer = Callable[..., Rows]

KINDS = ("propensity", "uplift", "churn", "ltv", "forecast", "recommend")


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if v.is_integer() and abs(v) >= 10 else f"{v:,.4f}"
    return str(v)


def _metrics_table(title: str, rows: list[dict[str, object]]) -> Table:
    table = Table(title=title)
    if not rows:
        return table
    for col in rows[0]:
        table.add_column(col, justify="left" if col in ("model", "target") else "right")
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    return table


@friendly_errors
def train_command(
    kind: Annotated[str, typer.Argument(help=f"What to train: {', '.join(KINDS)}.")],
    offer: Annotated[
        list[str] | None,
        typer.Option(
            "--offer",
            help="Offer(s) to train propensity models for (repeatable). Default: every offer "
            "with past contacts. For uplift: the offers pooled (default: all).",
        ),
    ] = None,
    learner: Annotated[
        str, typer.Option("--learner", help="Uplift meta-learner: s, t, x, dr, or 'all'.")
    ] = "s",
    tune_trials: Annotated[
        int,
        typer.Option(
            "--tune-trials",
            min=0,
            help="Optuna trials to tune propensity/churn hyper-parameters (0: the defaults).",
        ),
    ] = 0,
    promote: Annotated[
        bool, typer.Option("--promote", help="Promote each new version to production.")
    ] = False,
) -> None:
    """Train models from the store, register them and print their test-period metrics."""
    from qianmian.errors import ValidationError
    from qianmian.models.registry import ModelRegistry

    if kind not in KINDS:
        raise ValidationError(f"KIND '{kind}' is not one of {', '.join(KINDS)}.")
    settings = state.settings
    registry = ModelRegistry.for_workspace(settings.workspace)
    with settings.build_store() as store, progress_bar() as bar:
        trainer = _TRAINERS[kind]
        rows = trainer(
            store,
            settings.workspace,
            registry,
            bar,
            offers=offer,
            learner=learner,
            tune_trials=tune_trials,
            promote=promote,
        )
    console.print(_metrics_table(f"训练结果 trained {kind} models (test period)", rows))
    console.print(f"Registered in {registry.root}. `qianmian models list` shows every version.")


def _world(workspace: Path) -> World | None:
    """The simulated bank behind this workspace, if it is one (its oracle scores the models)."""
    from qianmian.world import World

    return World(workspace) if (workspace / "world" / "manifest.json").is_file() else None


def _finish(
    registry: ModelRegistry, trained: TrainedModel, extra: dict[str, float], promote: bool
) -> ModelCard:
    from qianmian.models.pipeline import register_trained

    card = register_trained(registry, trained, extra_metrics=extra)
    if promote:
        card = registry.promote(card.name, card.version)
    return card


def _train_propensity(
    store: Store,
    workspace: Path,
    registry: ModelRegistry,
    bar: Progress,
    *,
    offers: list[str] | None,
    tune_trials: int,
    promote: bool,
    **_: Any,
) -> Rows:
    from qianmian.models.datasets import contact_training_set
    from qianmian.models.oracle import oracle_comparison
    from qianmian.models.train import train_propensity

    task = bar.add_task("训练集 contact training set", total=1)
    data = contact_training_set(
        store, offers=offers, progress=lambda d, t: bar.update(task, completed=d, total=t)
    )
    offers = offers or sorted(data["offer_id"].unique())
    world = _world(workspace)
    fit = bar.add_task("倾向模型 propensity models", total=len(offers))
    rows = []
    for offer_id in offers:
        params = _tuned(data, offer_id, tune_trials, bar) if tune_trials else None
        trained = train_propensity(store, offer_id, data=data, params=params)
        extra = oracle_comparison(world, store, trained) if world else {}
        card = _finish(registry, trained, extra, promote)
        m = card.metrics
        row: dict[str, object] = {
            "model": card.label,
            "AUC": m["auc"],
            "PR-AUC": m["pr_auc"],
            "ECE": m["ece"],
            "base rate": m["base_rate"],
            "test rows": int(m["test_rows"]),
        }
        if world:
            row["oracle AUC"] = m["oracle_auc"]
        rows.append(row)
        bar.advance(fit)
    return rows


def _tuned(data: pd.DataFrame, offer_id: str, trials: int, bar: Progress) -> dict[str, Any]:
    from qianmian.models.datasets import model_features, prepare_features, time_split
    from qianmian.models.train import CONTACT_HORIZON_DAYS
    from qianmian.models.tuning import tune_propensity

    rows = data[(data["offer_id"] == offer_id) & (data["treated"] == 1)].reset_index(drop=True)
    split = time_split(rows["as_of"], horizon_days=CONTACT_HORIZON_DAYS)
    X = prepare_features(rows, model_features(("channel",)))
    y = rows["converted"].to_numpy(int)
    task = bar.add_task(f"调参 tuning {offer_id}", total=trials)
    return tune_propensity(
        X.iloc[split.train],
        y[split.train],
        X.iloc[split.validation],
        y[split.validation],
        n_trials=trials,
        progress=lambda d, t: bar.update(task, completed=d, total=t),
    )


def _train_uplift(
    store: Store,
    workspace: Path,
    registry: ModelRegistry,
    bar: Progress,
    *,
    offers: list[str] | None,
    learner: str,
    promote: bool,
    **_: Any,
) -> Rows:
    from qianmian.errors import ValidationError
    from qianmian.models.datasets import contact_training_set
    from qianmian.models.oracle import oracle_comparison
    from qianmian.models.train import UPLIFT_LEARNERS, train_uplift

    learners = UPLIFT_LEARNERS if learner == "all" else (learner,)
    if any(x not in UPLIFT_LEARNERS for x in learners):
        raise ValidationError(
            f"--learner '{learner}' is not one of {', '.join(UPLIFT_LEARNERS)} or 'all'."
        )
    task = bar.add_task("训练集 contact training set", total=1)
    data = contact_training_set(
        store, offers=offers, progress=lambda d, t: bar.update(task, completed=d, total=t)
    )
    world = _world(workspace)
    fit = bar.add_task("增益模型 uplift models", total=len(learners))
    rows = []
    for name in learners:
        trained = train_uplift(store, offers=offers, learner=name, data=data)  # type: ignore[arg-type]
        extra = oracle_comparison(world, store, trained) if world else {}
        card = _finish(registry, trained, extra, promote)
        m = card.metrics
        row: dict[str, object] = {"model": card.label, "Qini": m["qini"], "AUUC": m["auuc"]}
        if world:
            row["oracle Qini"] = m["oracle_qini"]
            row["share of oracle"] = m["qini_share_of_oracle"]
        rows.append(row)
        bar.advance(fit)
    return rows


def _train_customer(kind: str) -> Trainer:
    def run(
        store: Store,
        workspace: Path,
        registry: ModelRegistry,
        bar: Progress,
        *,
        promote: bool,
        **_: Any,
    ) -> Rows:
        from qianmian.models.train import train_churn, train_ltv

        task = bar.add_task(f"{kind} snapshots", total=1)
        progress = lambda d, t: bar.update(task, completed=d, total=t)  # noqa: E731
        trained = (train_churn if kind == "churn" else train_ltv)(store, progress=progress)
        card = _finish(registry, trained, {}, promote)
        shown = _SHOWN[kind]
        return [{"model": card.label, **{k: card.metrics[k] for k in shown}}]

    return run


def _train_recommend(
    store: Store,
    workspace: Path,
    registry: ModelRegistry,
    bar: Progress,
    *,
    promote: bool,
    **_: Any,
) -> Rows:
    from qianmian.models.train_sequences import train_recommender

    task = bar.add_task("推荐模型 recommenders (popularity, ALS, DeepFM)", total=None)
    result = train_recommender(store, registry, promote=promote)
    bar.update(task, total=1, completed=1)
    return _comparison_rows(result)


def _train_forecast(
    store: Store,
    workspace: Path,
    registry: ModelRegistry,
    bar: Progress,
    *,
    promote: bool,
    **_: Any,
) -> Rows:
    from qianmian.errors import NotFoundError
    from qianmian.models.train_sequences import train_need_forecaster

    world = _world(workspace)
    if world is None:
        raise NotFoundError(
            "Need forecasting is measured against the simulated bank's life events; this "
            "workspace has none (run `qianmian generate`)."
        )
    task = bar.add_task("需求预测 need forecast (LightGBM, LSTM)", total=None)
    result = train_need_forecaster(
        store,
        registry,
        world=world,
        promote=promote,
        progress=lambda d, t: bar.update(task, completed=d, total=t),
    )
    return _comparison_rows(result)


def _comparison_rows(result: SequenceModelResult) -> Rows:
    rows: Rows = [
        {str(k): (float(v) if isinstance(v, int | float) else v) for k, v in r.items()}
        for r in result.comparison.to_dict(orient="records")
    ]
    footer: dict[str, object] = {k: "" for k in rows[0]}
    rows.append(footer | {"model": f"registered: {result.card.label}"})
    return rows


_SHOWN = {
    "churn": ("auc", "pr_auc", "ece", "base_rate", "test_rows"),
    "ltv": ("spearman", "mae", "mae_mean_baseline", "top_decile_revenue_share", "test_rows"),
}
_TRAINERS: dict[str, Trainer] = {
    "propensity": _train_propensity,
    "uplift": _train_uplift,
    "churn": _train_customer("churn"),
    "ltv": _train_customer("ltv"),
    "recommend": _train_recommend,
    "forecast": _train_forecast,
}


@friendly_errors
def evaluate_command(
    name: Annotated[
        list[str] | None,
        typer.Argument(help="Models to evaluate (default: every registered model)."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Chart labels: zh or en.")] = "zh",
) -> None:
    """Re-score registered models on their latest closed period; write reports/models.html."""
    from qianmian.models.evaluate import evaluate_models
    from qianmian.models.registry import ModelRegistry

    settings = state.settings
    registry = ModelRegistry.for_workspace(settings.workspace)
    with settings.build_store() as store, progress_bar() as bar:
        task = bar.add_task("评估 evaluating", total=None)
        result = evaluate_models(
            store,
            settings.workspace,
            registry,
            name,
            world=_world(settings.workspace),
            lang=lang,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )
    console.print(_metrics_table("模型评估 model evaluation", result.rows))
    for label, report in result.fairness.items():
        for flag in report.flagged:
            console.print(f"[yellow]公平性 fairness · {label}: {flag}[/yellow]")
    console.print(f"Report written to {result.path}")


@friendly_errors
def explain_command(
    customer_id: Annotated[int, typer.Argument(help="The customer to explain.")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Model(s) to explain (default: every propensity and churn model in production, "
            "else its latest version).",
        ),
    ] = None,
    channel: Annotated[
        str, typer.Option("--channel", help="Channel of the contact, for propensity models.")
    ] = "app_push",
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Point in time (default: after the latest transaction)."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="zh or en.")] = "zh",
    top: Annotated[int, typer.Option("--top", min=1, max=10, help="Reasons per model.")] = 3,
) -> None:
    """A customer's scores and the top reasons behind each (SHAP, in plain words)."""
    from qianmian.models.explain_customer import explain_customer
    from qianmian.models.registry import ModelRegistry

    settings = state.settings
    registry = ModelRegistry.for_workspace(settings.workspace)
    with settings.build_store() as store, console.status("Explaining …"):
        results = explain_customer(
            store,
            registry,
            customer_id,
            models=model,
            channel=channel,
            as_of=as_of,
            lang=lang,
            top=top,
        )
    for res in results:
        table = Table(title=f"{res.label}: score {res.score:.4f} (as of {res.as_of:%Y-%m-%d})")
        table.add_column("#", justify="right")
        table.add_column("原因 reason" if lang == "zh" else "reason")
        table.add_column("SHAP", justify="right")
        for r in res.reasons.itertuples():
            table.add_row(str(r.rank), str(r.text), f"{r.shap:+.3f}")
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("explain")(explain_command)
