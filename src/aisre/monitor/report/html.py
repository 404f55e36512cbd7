"""A self-contained HTML drift report: one file, inline CSS and SVG, no scripts.

Plots are drawn from binned profiles (reference bins, open outer bins), so the file size
depends on the number of columns, not rows: about 4 KB per column plus the table. The table
shows what each test did not see (missing and infinite values, reference / current) and
every column's note, so a column that went half infinite never reads as a quiet "ok".
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from aisre.monitor.profiles.profile import OTHER, CategoricalProfile, NumericProfile, fit_profile
from aisre.monitor.report import svg
from aisre.monitor.tabular.frame import is_numeric
from aisre.records import Signal

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.verdict{display:inline-block;padding:4px 10px;border-radius:4px;font-weight:600}
.drift{background:#ffe3e3;color:#c92a2a}.ok{background:#d3f9d8;color:#2b8a3e}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #eee;
text-align:right}td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}.cell{border:1px solid #eee;padding:4px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def _num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def _pair(details: dict[str, Any], what: str) -> str:
    """'ref / cur' counts of missing or infinite values, '–' when the result does not carry them."""
    ref, cur = details.get(f"{what}_reference"), details.get(f"{what}_current")
    if ref is None and cur is None:
        return "–"
    return f"{ref or 0:,} / {cur or 0:,}"


def column_histogram(name: str, reference: np.ndarray, current: np.ndarray, max_categories: int = 12) -> str:
    """Overlaid shares of reference and current over the reference's bins (or categories)."""
    if is_numeric(reference) and is_numeric(current):
        ref = fit_profile(reference, bins="doane")
        assert isinstance(ref, NumericProfile)
        cur = NumericProfile.empty_like(ref).update(current)
        edges = ref.edges
        labels = [f"< {svg._fmt(edges[0])}"] + [svg._fmt(e) for e in edges[:-1]] + [f"> {svg._fmt(edges[-1])}"]
        r, c = ref.counts.astype(float), cur.counts.astype(float)
    else:
        ref_c = fit_profile(reference, category_cap=max_categories)
        assert isinstance(ref_c, CategoricalProfile)
        cur_c = CategoricalProfile.empty_like(ref_c).update(current)
        labels = [*ref_c.vocabulary, OTHER]
        r, c = ref_c.counts.astype(float), cur_c.counts.astype(float)
    r_share = r / r.sum() if r.sum() else r
    c_share = c / c.sum() if c.sum() else c
    return svg.histogram(labels, r_share.tolist(), c_share.tolist(), name)


def drift_report_html(
    result: Any,
    reference: dict[str, np.ndarray] | None = None,
    current: dict[str, np.ndarray] | None = None,
    *,
    title: str = "Data drift report",
    history: Sequence[tuple[float, Signal]] = (),
    max_plots: int = 200,
) -> str:
    """Render a drift result (from `aisre.monitor.drift.drift`) as one HTML page.

    `reference`/`current` (named columns) add overlaid histograms, drifted columns first;
    `history` (stored signals) adds drift-over-time charts.
    """
    columns = result.columns
    ordered = sorted(columns.items(), key=lambda kv: (not kv[1].drift, kv[0]))
    drifted = sum(1 for r in columns.values() if r.drift)
    verdict = "drift" if result.dataset_drift else "ok"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><div>generated {now} by aisre</div><p>",
        f"<span class='verdict {verdict}'>{'Dataset drift detected' if result.dataset_drift else 'No dataset drift'}"
        f"</span> &nbsp; {drifted} of {len(columns)} columns drifted "
        f"(share {result.share_drifted:.2f})</p>",
    ]
    if reference is not None and current is not None:
        n_ref = len(next(iter(reference.values()))) if reference else 0
        n_cur = len(next(iter(current.values()))) if current else 0
        out.append(f"<p>reference rows: {n_ref:,} &nbsp; current rows: {n_cur:,}</p>")
    out.append(
        "<h2>Columns</h2><table><tr><th>column</th><th>method</th><th>statistic</th>"
        "<th>p-value</th><th>threshold</th><th>drift</th><th>missing (ref / cur)</th>"
        "<th>infinite (ref / cur)</th></tr>"
    )
    for name, r in ordered:
        badge = "<span class='verdict drift'>drift</span>" if r.drift else "<span class='verdict ok'>ok</span>"
        out.append(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(r.method)}</td><td>{_num(r.statistic)}</td>"
            f"<td>{_num(r.p_value)}</td><td>{_num(r.threshold)}</td><td>{badge}</td>"
            f"<td>{_pair(r.details, 'missing')}</td><td>{_pair(r.details, 'infinite')}</td></tr>"
        )
    out.append("</table>")
    notes = [(name, r.details["note"]) for name, r in ordered if r.details.get("note")]
    if notes:
        out.append("<h2>Notes</h2><ul>")
        out.extend(f"<li><b>{html.escape(name)}</b>: {html.escape(note)}</li>" for name, note in notes)
        out.append("</ul>")
    if history:
        out.append("<h2>Drift over time</h2>")
        out.append(_history_charts(history))
    if reference is not None and current is not None:
        out.append(
            "<h2>Distributions</h2><div class='legend'>share of rows per bin:"
            f"<span style='background:{svg.REFERENCE_COLOUR}'></span>reference"
            f"<span style='background:{svg.CURRENT_COLOUR}'></span>current</div><div class='grid'>"
        )
        for name, _ in ordered[:max_plots]:
            if name in reference and name in current:
                out.append(f"<div class='cell'>{column_histogram(name, reference[name], current[name])}</div>")
        out.append("</div>")
    out.append("</body></html>")
    return "".join(out)


def _history_charts(history: Sequence[tuple[float, Signal]]) -> str:
    """Per signal name, one chart with a line per feature (top 8 by latest value)."""
    by_name: dict[str, dict[str, list[tuple[float, float]]]] = {}
    thresholds: dict[str, float | None] = {}
    for computed_at, s in history:
        x = s.window_end if s.window_end is not None else computed_at
        key = s.labels.get("feature") or s.labels.get("column") or s.name
        by_name.setdefault(s.name, {}).setdefault(key, []).append((x, s.value))
        thresholds[s.name] = s.threshold
    parts = []
    for name, series in sorted(by_name.items()):
        top = sorted(series.items(), key=lambda kv: -kv[1][-1][1])[:8]
        parts.append(svg.lines(dict(top), name, thresholds.get(name)))
    return "".join(parts)
