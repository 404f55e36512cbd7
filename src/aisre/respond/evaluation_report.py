"""An offline evaluation as one self-contained HTML page: inline CSS, no scripts, nothing fetched."""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

from aisre.respond.evaluation import EvaluationResult

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:600}
.fail{background:#ffe3e3;color:#c92a2a}.pass{background:#d3f9d8;color:#2b8a3e}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td{white-space:nowrap}td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
td.note,th.note{text-align:left;white-space:normal}.muted{color:#666}
"""


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return html.escape(x)
    if not math.isfinite(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits}g}"


def _badge(passed: bool) -> str:
    return "<span class='verdict pass'>pass</span>" if passed else "<span class='verdict fail'>FAIL</span>"


def evaluation_html(result: EvaluationResult) -> str:
    """The verdict, every check (value, interval, threshold, what was compared), every metric, and the run's facts."""
    title = f"Offline evaluation of {result.model}/{result.version}"
    when = dt.datetime.fromtimestamp(result.ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><div class='muted'>run {when} by aisre</div>",
        f"<p>{_badge(result.passed)} &nbsp; {len(result.checks) - len(result.failed)} of {len(result.checks)} checks "
        f"passed; task {html.escape(result.task)}, {result.data.get('rows', 0):,} rows</p>",
        "<h2>Checks</h2><table><tr><th>check</th><th>kind</th><th>value</th><th>interval</th><th>threshold</th>"
        "<th>compared</th><th>result</th><th class='note'>note</th></tr>",
    ]
    for c in result.checks:
        interval = "–" if c.lower is None and c.upper is None else f"[{_num(c.lower)}, {_num(c.upper)}]"
        sign = "≥" if c.direction == "min" else "≤"
        out.append(
            f"<tr><td>{html.escape(c.name)}</td><td>{c.kind}</td><td>{_num(c.value)}</td><td>{interval}</td>"
            f"<td>{sign} {_num(c.threshold)}</td><td>{html.escape(c.judged_by)}</td><td>{_badge(c.passed)}</td>"
            f"<td class='note'>{html.escape(c.note or '')}</td></tr>"
        )
    out.append("</table>")
    out.append("<h2>All quality metrics</h2><table><tr><th>metric</th><th>method</th><th>value</th>")
    out.append("<th>interval</th><th>rows</th><th class='note'>note</th></tr>")
    for name, m in result.metrics.items():
        out.append(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(str(m.get('method')))}</td><td>{_num(m.get('value'))}"
            f"</td><td>[{_num(m.get('lower'))}, {_num(m.get('upper'))}] at {m.get('confidence')}</td>"
            f"<td>{m.get('n')}</td><td class='note'>{html.escape(m.get('note') or '')}</td></tr>"
        )
    out.append("</table>")
    for report in result.fairness:
        out.append(f"<h2>Fairness: groups of {html.escape(str(report.get('sensitive_feature')))}</h2>")
        out.append("<table><tr><th>group</th><th>rows</th><th>selection rate</th><th>TPR</th><th>FPR</th></tr>")
        for g in report.get("groups", []):
            out.append(
                f"<tr><td>{html.escape(str(g['group']))}</td><td>{g['count']}</td><td>{_num(g['selection_rate'])}</td>"
                f"<td>{_num(g['true_positive_rate'])}</td><td>{_num(g['false_positive_rate'])}</td></tr>"
            )
        out.append("</table>")
    lat = result.latency
    if lat:
        out.append(f"<h2>Latency (ms) over {lat.get('calls')} calls</h2><table><tr><th>percentile</th>")
        out.append("<th>value</th><th>interval</th></tr>")
        for key, p in lat.get("percentiles", {}).items():
            out.append(
                f"<tr><td>{key}</td><td>{_num(p['value'])}</td><td>[{_num(p['lower'])}, {_num(p['upper'])}]</td></tr>"
            )
        out.append("</table>")
    facts = [
        ("data", result.data.get("path")),
        ("data sha256", result.data.get("sha256")),
        ("label", result.data.get("label")),
        ("features", ", ".join(result.data.get("features", []))),
        ("scored", result.target.get("scored")),
        ("artifact sha256", result.target.get("artifact_sha256")),
        ("latency measures", result.target.get("latency_measures")),
        ("judged by", result.thresholds.get("use")),
    ]
    out.append("<h2>Run</h2><table>")
    out.extend(f"<tr><td>{k}</td><td class='note'>{html.escape(str(v))}</td></tr>" for k, v in facts if v)
    out.append("</table>")
    if result.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
    out.append("</body></html>")
    return "".join(out)
