"""What a drill found: the detection delay of each fault, each expectation met or not (and what happened
instead), the timeline as a terminal table or JSON.

A fault is *detected* by the first event at or after its start that is a finding or an act: a signal
breached, an SLO alert firing, a playbook firing, a breaker opening, a registry change made by a playbook
(a rollback), an incident opened. Its detection delay is that event's time minus the fault's start, in
simulated seconds; the time of a finding is when aisre published it (a monitoring window is checked once
it has closed), which is what an operator waits for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aisre.drills.scenario import Expectation, FaultSpec
from aisre.drills.timeline import DrillRun, Event

DETECTING = ("signal", "alert", "playbook", "breaker", "registry", "incident")


def detects(e: Event) -> bool:
    """Whether an event is a finding or an act (see the module docstring)."""
    d = e.data
    return (
        (e.kind == "signal" and d.get("breached") is True)
        or (e.kind == "alert" and d.get("state") == "firing")
        or (e.kind == "playbook" and d.get("event") == "fired")
        or (e.kind == "breaker" and d.get("after") == "open")
        or (e.kind == "registry" and not str(d.get("actor", "")).startswith("drill"))
        or e.kind == "incident"
    )


def fault_detections(run: DrillRun) -> list[dict[str, Any]]:
    out = []
    for f in run.scenario.faults:
        after = [e for e in run.events if e.t >= f.at_s and detects(e) and _about_data_since(e, f.at_s)]
        first_by_kind: dict[str, float] = {}
        for e in after:
            first_by_kind.setdefault(e.kind, e.t - f.at_s)
        first = after[0] if after else None
        out.append(
            {
                "fault": f.name,
                "kind": f.kind,
                "at_s": f.at_s,
                "end_s": None if math.isinf(f.end_s) else f.end_s,
                "detected": first is not None,
                "detection_delay_s": None if first is None else first.t - f.at_s,
                "detected_by": None if first is None else first.what,
                "delay_by_kind_s": first_by_kind,
            }
        )
    return out


def _about_data_since(e: Event, start: float) -> bool:
    """A signal about a window that closed before the fault began is not a detection of it (noise)."""
    end = e.data.get("window_end_s")
    return e.kind != "signal" or end is None or end > start


@dataclass
class Verdict:
    expectation: Expectation
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "expect": self.expectation.model_dump(exclude_none=True, exclude_defaults=True),
            "passed": self.passed,
            "detail": self.detail,
        }


def describe(x: Expectation) -> str:
    k = x.kind
    if k == "signal":
        what = f"signal {x.signal}{f' of {x.version}' if x.version else ''} breached"
    elif k == "alert":
        what = f"SLO {x.alert} {x.severity} alert firing"
    elif k == "playbook":
        what = f"playbook {x.playbook} fired"
    elif k == "breaker":
        b = x.breaker or {}
        what = f"breaker of {b.get('model', '*')}/{b.get('version', '*')} opened"
    elif k == "rollback":
        what = f"rollback of {x.rollback}{f' to {x.to}' if x.to else ''}"
    else:
        what = "an incident opened"
    return what if x.positive else f"no {what}"


def _matches(x: Expectation, e: Event) -> bool:
    d = e.data
    k = x.kind
    if k == "signal":
        return (
            e.kind == "signal"
            and d.get("signal") == x.signal
            and (x.version in (None, d.get("version")))
            and d.get("breached") is True
        )
    if k == "alert":
        return (
            e.kind == "alert"
            and d.get("slo") == x.alert
            and d.get("severity") == x.severity
            and d.get("state") == "firing"
        )
    if k == "playbook":
        return e.kind == "playbook" and d.get("playbook") == x.playbook and d.get("event") == "fired"
    if k == "breaker":
        b = x.breaker or {}
        return (
            e.kind == "breaker"
            and d.get("after") == "open"
            and b.get("model") in (None, d.get("model"))
            and b.get("version") in (None, d.get("version"))
        )
    if k == "rollback":
        moved = (
            d.get("to_status") == "retired"
            or d.get("stable_before") != d.get("stable_after")
            or "rollback" in str(d.get("action"))
        )
        return (
            e.kind == "registry"
            and d.get("model") == x.rollback
            and not str(d.get("actor", "")).startswith("drill")
            and moved
            and (x.to is None or d.get("stable_after") == x.to)
        )
    return e.kind == "incident"


def judge(run: DrillRun) -> list[Verdict]:
    faults = {f.name: f for f in run.scenario.faults}
    verdicts = []
    for x in run.scenario.expect:
        until = faults[x.before] if x.before is not None else None
        verdicts.append(_judge_one(x, run.events, faults.get(x.after or ""), until))
    return verdicts


def _judge_one(x: Expectation, events: list[Event], fault: FaultSpec | None, until: FaultSpec | None) -> Verdict:
    start = fault.at_s if fault is not None else 0.0
    end = until.at_s if until is not None else math.inf
    hits = [
        e for e in events if _matches(x, e) and start <= e.t < end and (fault is None or _about_data_since(e, start))
    ]
    within = x.within_s
    in_time = [e for e in hits if within is None or e.t - start <= within]
    since = f" after {fault.name} (at {hms(fault.at_s)})" if fault is not None else ""
    since += f" before {until.name} (at {hms(until.at_s)})" if until is not None else ""
    bound = f" within {hms(within)}" if within is not None else ""
    if x.positive:
        if in_time:
            e = in_time[0]
            return Verdict(
                x, True, f"{describe(x)} at {hms(e.t)}{f' ({hms(e.t - start)} after {fault.name})' if fault else ''}"
            )
        if hits:
            late = hits[0].t - start
            return Verdict(x, False, f"expected {describe(x)}{bound}{since}; it came {hms(late)} after, too late")
        return Verdict(x, False, f"expected {describe(x)}{since}; it never happened. Instead: {_instead(x, events)}")
    if in_time:
        e = in_time[0]
        return Verdict(x, False, f"expected {describe(x)}{since}; but at {hms(e.t)}: {e.what}")
    return Verdict(x, True, f"{describe(x)}{since}, as expected")


def _instead(x: Expectation, events: list[Event]) -> str:
    kind = {"rollback": "registry"}.get(x.kind, x.kind)
    same = [e for e in events if e.kind == kind and (kind != "signal" or e.data.get("breached"))]
    if same:
        return "; ".join(f"{hms(e.t)} {e.what}" for e in same[:3]) + (
            f" (+{len(same) - 3} more)" if len(same) > 3 else ""
        )
    found = [e for e in events if detects(e)]
    if found:
        return f"no {kind} events; first finding: {hms(found[0].t)} {found[0].what}"
    return "aisre detected nothing during the drill"


def hms(seconds: float | None) -> str:
    """1h05m, 45m, 30s: a simulated duration as people write it."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    parts = ([f"{h}h"] if h else []) + ([f"{m:02d}m" if h else f"{m}m"] if m else []) + ([f"{sec}s"] if sec else [])
    return "".join(parts) or "0s"


def to_json(run: DrillRun, verdicts: list[Verdict], wall_s: float) -> dict[str, Any]:
    s = run.scenario
    return {
        "scenario": s.name,
        "passed": all(v.passed for v in verdicts),
        "wall_s": round(wall_s, 3),
        "clock": {"start": s.clock.start, "step_s": s.clock.step_s, "duration_s": s.clock.duration_s},
        "trained_accuracy": run.trained,
        "faults": fault_detections(run),
        "expectations": [v.to_dict() for v in verdicts],
        "timeline": [e.to_dict() for e in run.events],
        "steps": run.steps,
    }


def render(run: DrillRun, verdicts: list[Verdict], wall_s: float, console: Any) -> None:
    """The timeline, the detection delays and the expectations as rich tables."""
    from rich.markup import escape
    from rich.table import Table

    s = run.scenario
    console.print(
        f"[bold]drill {s.name}[/]: {hms(s.clock.duration_s)} simulated in {wall_s:.1f} s"
        f" (step {hms(s.clock.step_s)}, {s.traffic.requests_per_step} requests a step)"
    )
    timeline = Table(title="timeline", title_justify="left")
    for col in ("t", "kind", "what"):
        timeline.add_column(col, no_wrap=col != "what")
    for e in run.events:
        style = "bold" if detects(e) else ""
        timeline.add_row(hms(e.t), e.kind, escape(e.what), style=style)
    console.print(timeline)
    faults = Table(title="detection delay per fault", title_justify="left")
    for col in ("fault", "kind", "at", "detected after", "by"):
        faults.add_column(col, no_wrap=col != "by")
    for f in fault_detections(run):
        by = escape(f["detected_by"] or "not detected")
        faults.add_row(f["fault"], f["kind"], hms(f["at_s"]), hms(f["detection_delay_s"]), by)
    console.print(faults)
    expect = Table(title="expectations", title_justify="left")
    expect.add_column("")
    expect.add_column("expectation")
    for v in verdicts:
        expect.add_row("[green]ok[/]" if v.passed else "[red]FAIL[/]", escape(v.detail))
    console.print(expect)
