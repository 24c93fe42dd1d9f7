"""``qianmian models list|show|promote``: the model registry of the workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, state

if TYPE_CHECKING:
    from qianmian.models.registry import ModelCard, ModelRegistry

__all__ = ["register"]

models_app = typer.Typer(
    help="Registered models (模型注册表): versions, cards and promotion to production.",
    no_args_is_help=True,
)

_STAGE_STYLE = {"production": "bold green", "candidate": "yellow", "archived": "dim"}


def _registry() -> ModelRegistry:
    from qianmian.models.registry import ModelRegistry

    return ModelRegistry.for_workspace(state.settings.workspace)


def _stage(stage: str) -> str:
    return f"[{_STAGE_STYLE.get(stage, '')}]{stage}[/]"


def _key_metric(card: ModelCard) -> str:
    value = card.key_metric_value
    return "" if value is None else f"{card.key_metric} {value:.4g}"


@models_app.command("list")
@friendly_errors
def list_command(
    name: Annotated[str | None, typer.Argument(help="Only the versions of this model.")] = None,
) -> None:
    """List registered models: name, version, kind, stage, created, key metric."""
    registry = _registry()
    cards = registry.list(name)
    if not cards:
        console.print(
            f"No model is registered in {registry.root} yet; training commands register them."
        )
        return
    out = Table(title=f"模型注册表 model registry ({registry.root})")
    for col, justify in (
        ("name", "left"),
        ("version", "right"),
        ("kind", "left"),
        ("stage", "left"),
        ("created (UTC)", "left"),
        ("key metric", "right"),
    ):
        out.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for card in cards:
        out.add_row(
            card.name,
            f"v{card.version}",
            card.kind,
            _stage(card.stage),
            f"{card.created_at:%Y-%m-%d %H:%M}",
            _key_metric(card),
        )
    console.print(out)


@models_app.command("show")
@friendly_errors
def show_command(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        int | None,
        typer.Option("--version", "-v", min=1, help="Version (default: production, else latest)."),
    ] = None,
    features: Annotated[
        bool, typer.Option("--features", help="Also list every feature and its type.")
    ] = False,
) -> None:
    """Show a model's card: provenance, metrics, feature schema and all its versions."""
    registry = _registry()
    card = registry.card(name, version)
    versions = registry.list(name)
    window = card.training_window
    out = Table(title=f"{card.label} ({card.kind})", show_header=False)
    out.add_column("field", style="bold")
    out.add_column("value", overflow="fold")
    for field, value in (
        ("stage", _stage(card.stage)),
        ("created", f"{card.created_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("training window", f"{window.start} → {window.end} (as of {card.as_of})"),
        ("target", card.target or "—"),
        ("features", f"{len(card.features)}"),
        ("schema hash", card.schema_hash),
        ("artifact", f"{card.artifact} {card.model_class}"),
        ("artifact sha256", card.artifact_sha256),
        ("python", card.python_version),
        ("packages", ", ".join(f"{k} {v}" for k, v in card.packages.items())),
        ("needs (major checked)", ", ".join(card.requires) or "—"),
        ("description", card.description or "—"),
        ("versions", ", ".join(f"v{c.version} {_stage(c.stage)}" for c in versions)),
        (
            "stage history",
            "; ".join(f"{h.stage} {h.at:%Y-%m-%d %H:%M} {h.note}" for h in card.stage_history),
        ),
    ):
        out.add_row(field, value)
    console.print(out)

    metrics = Table(title="metrics")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for key, score in card.metrics.items():
        metrics.add_row(f"{key} ★" if key == card.key_metric else key, f"{score:.6g}")
    console.print(metrics)
    if features:
        schema = Table(title="features")
        for col in ("#", "feature", "type"):
            schema.add_column(col)
        for i, (feature, kind) in enumerate(card.feature_types.items(), start=1):
            schema.add_row(str(i), feature, kind)
        console.print(schema)


@models_app.command("promote")
@friendly_errors
def promote_command(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to put in production.")],
) -> None:
    """Put a version in production; the version there before is archived."""
    registry = _registry()
    before = registry.production(name)
    card = registry.promote(name, version)
    if before == version:
        console.print(f"{card.label} is already in production; nothing changed.")
        return
    archived = f" (v{before} archived)" if before is not None else ""
    console.print(f"{card.label} is now in [bold green]production[/]{archived}.")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
