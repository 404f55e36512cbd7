"""The demo's terminal view: short headlines for the drill's timeline events, the narration that explains them,
and the live panel (rich) drawn from a `Snapshot`. Pure functions: what to show, never how the story runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich import box
from rich.console import Group
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from aisre.demo.snapshot import Snapshot
from aisre.drills.timeline import Event

STATE_STYLE = {"closed": "green", "open": "bold red", "half_open": "yellow"}
ALERT_STYLE = {"firing": "bold red", "pending": "yellow", "resolved": "green", "inactive": "dim"}


def clock_text(t0: float, t: float) -> str:
    """`HH:MM` of the simulated day (the story starts at 00:00)."""
    return dt.datetime.fromtimestamp(t0 + t, tz=dt.UTC).strftime("%H:%M")


def headlines(events: list[Event]) -> list[tuple[float, str, str]]:
    """(t, kind, one short line) per event worth a line: the per-feature drift scores fold into the dataset
    drift line ("drift detected on fraud/v2 (8 features)")."""
    out: list[tuple[float, str, str]] = []
    for e in events:
        d = e.data
        if e.kind == "signal":
            name = d.get("signal")
            if name in ("data_drift_score", "data_drift_share"):
                continue
            where = f"{d.get('model')}/{d.get('version')}"
            if name == "dataset_drift":
                n = sum(
                    1
                    for o in events
                    if o.t == e.t and o.data.get("signal") == "data_drift_score" and o.data.get("breached")
                )
                text = f"drift detected on {where} ({n} features)" if d.get("breached") else f"drift on {where} over"
            else:
                state = "breached" if d.get("breached") else "back within bounds"
                text = f"{name} of {where} {state} ({_num(d.get('value'))})"
        elif e.kind == "breaker":
            after = str(d.get("after"))
            where = f"{d.get('model')}/{d.get('version')}"
            tail = " -> fallback rule" if after == "open" else (" (probing)" if after == "half_open" else "")
            text = f"breaker {where} {after.upper().replace('_', '-')}{tail}"
        elif e.kind == "alert":
            text = f"SLO {d.get('slo')}: {d.get('severity')} {d.get('state')}"
        elif e.kind == "playbook":
            if d.get("event") == "fired":
                continue
            text = e.what.replace(": action: ", ": ")
            text = text.replace("rolled back fraud: ", "rollback ").split(" {")[0]
        elif e.kind == "registry":
            text = f"registry: {d.get('model')}/{d.get('version')} -> {d.get('to_status')} by {d.get('actor')}"
        else:
            text = e.what
        out.append((e.t, e.kind, text))
    return out


def explain(e: Event, llm_model: str | None) -> str | None:
    """A narration line for the events that change the story (None for the others)."""
    d = e.data
    if e.kind == "alert" and d.get("severity") == "page" and d.get("state") == "firing":
        return (
            f"The late labels show {d.get('slo')} failing: its error budget burns fast enough to page."
            " That page is a condition of the AI circuit breaker."
        )
    if e.kind == "breaker" and d.get("after") == "open":
        if d.get("model") == llm_model:
            return (
                f"The refusal rate of {llm_model} breached its limit: its breaker opens and a canned rule answers"
                " in OpenAI shape instead of passing refusals on."
            )
        return (
            f"The AI circuit breaker of {d.get('model')}/{d.get('version')} opens: its share of traffic is now"
            " answered by the fallback rule (route=fallback), not by the failing model."
        )
    if e.kind == "breaker" and d.get("after") == "closed":
        return f"Probes succeed: the breaker of {d.get('model')}/{d.get('version')} closes; the model serves again."
    if e.kind == "signal" and d.get("signal") == "dataset_drift" and d.get("breached"):
        return f"The hourly drift check of {d.get('model')}/{d.get('version')} breaches against the clean reference."
    if e.kind == "playbook" and d.get("event") == "action" and "rolled back" in e.what:
        return (
            "The playbook drift-rollback acts: the canary is retired, every request goes to stable v1,"
            " promotions freeze."
        )
    if e.kind == "incident":
        return f"{e.what}: the evidence and every action are on its timeline (aisre incidents, the dashboard)."
    if e.kind == "alert" and d.get("state") == "resolved":
        return f"{d.get('slo')}: the page resolves (its short alert window is clean again)."
    return None


def render(
    snap: Snapshot, lines: list[tuple[float, str, str]], narration: list[str], t0: float, height: int = 60
) -> Group:
    """The live panel, compact enough for `height` terminal lines: the narration first, then serving, SLOs,
    monitors and as many of the newest timeline events as fit (3 to 8)."""
    head = Text.assemble(
        ("aisre demo ", "bold"),
        (f"  simulated time {clock_text(t0, snap.t)} UTC", "bold cyan"),
        f"  step {snap.step + 1}/{snap.steps}  ",
        ("(10 simulated minutes a step)", "dim"),
    )
    story = Text("\n".join(f"> {line}" for line in narration[-2:]), style="italic")
    serving = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False)
    for col in ("model/version", "status", "weight", "req/step", "fallback", "accuracy 1h", "breaker"):
        serving.add_column(col)
    for v in snap.versions:
        acc = "-" if v.accuracy_1h is None else f"{v.accuracy_1h:.1%}"
        acc_style = "red" if v.accuracy_1h is not None and v.accuracy_1h < 0.9 else ""
        state = v.breaker or "-"
        serving.add_row(
            f"{v.model}/{v.version}",
            v.status,
            f"{v.weight:.0f}%",
            str(v.requests),
            str(v.fallbacks) if v.fallbacks else "-",
            Text(acc, style=acc_style),
            Text(state, style=STATE_STYLE.get(state, "")),
        )
    slos = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False)
    for col in ("SLO (correctness, 90% over 1d)", "budget left", "burn 1h", "page"):
        slos.add_column(col)
    for s in snap.slos:
        left = "-" if s.budget_remaining is None else f"{s.budget_remaining:.0%}"
        burn = "-" if s.burn_1h is None else f"{s.burn_1h:.1f}x"
        slos.add_row(s.name, left, burn, Text(s.page, style=ALERT_STYLE.get(s.page, "")))
    watch = Table.grid(padding=(0, 2))
    d = snap.drift
    if d:
        drift = f"{d['version']}: {'DRIFT' if d['breached'] else 'no drift'}"
        if d.get("share") is not None:
            drift += f" (share {d['share']:.0%} of inputs, {d['features']} drifted)"
        watch.add_row("drift (1h windows)", Text(drift, style="bold red" if d["breached"] else "green"))
    else:
        watch.add_row("drift (1h windows)", Text("waiting for the clean reference (the first 2 h)", style="dim"))
    if snap.llm:
        rate = snap.llm.get("refusal_rate")
        shown = "-" if rate is None else f"{rate:.0%}"
        watch.add_row(
            "LLM refusal rate", Text(shown, style="bold red" if snap.llm.get("refusal_breached") else "green")
        )
        watch.add_row(
            "LLM tokens / cost",
            f"{snap.llm['tokens']:,} tokens over {snap.llm['requests']:,} requests, ${snap.llm['cost_usd']:.4f}",
        )
    events = Table.grid(padding=(0, 1))
    fixed = 4 + 4 + len(snap.versions) + len(snap.slos) + len(watch.rows)  # everything but the events
    for t, kind, text in lines[-max(3, min(8, height - fixed)) :]:
        events.add_row(Text(clock_text(t0, t), style="cyan"), Text(kind, style="dim"), text)
    return Group(head, story, serving, slos, watch, Rule("timeline", align="left", style="dim"), events)


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)
