"""One self-contained HTML page of key figures, tables and Plotly charts (JS embedded once).

Banks run offline: the page loads no script from anywhere, so it opens from a file share or an
e-mail attachment exactly as written.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["write_html_report"]

_STYLE = """body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:24px;
color:#222} .kfs{display:flex;flex-wrap:wrap;gap:12px} .kf{background:#f4f6fa;
border-radius:8px;padding:12px 16px;min-width:170px} .v{font-size:22px;font-weight:600}
.k{color:#666;font-size:13px} .note{color:#666;font-size:13px}
table{border-collapse:collapse;margin:12px 0;font-size:13px} td,th{border:1px solid #ddd;
padding:4px 8px;text-align:right} th{background:#f4f6fa} td:first-child{text-align:left}"""


def write_html_report(
    path: Path,
    title: str,
    figures: Sequence[go.Figure],
    *,
    key_figures: Mapping[str, str] | None = None,
    note: str = "",
    sections_html: Sequence[str] = (),
) -> Path:
    """Write ``figures`` (after the key figures and any pre-rendered HTML sections) to ``path``.

    ``sections_html`` must already be escaped (e.g. ``DataFrame.to_html()``).
    """
    parts = [
        pio.to_html(f, full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, f in enumerate(figures)
    ]
    cards = "".join(
        f"<div class='kf'><div class='v'>{html.escape(v)}</div>"
        f"<div class='k'>{html.escape(k)}</div></div>"
        for k, v in (key_figures or {}).items()
    )
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
{f'<p class="note">{html.escape(note)}</p>' if note else ""}
<div class="kfs">{cards}</div>
{"".join(f"<section>{s}</section>" for s in sections_html)}
{"".join(f"<section>{p}</section>" for p in parts)}
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
