"""Drills: rehearse faults against the real gateway, store, monitors, SLO judge and playbooks on an accelerated clock.

    from aisre.drills import Drill, load_scenario, judge
    run = Drill(load_scenario("examples/drills/covariate-drift-canary.yaml"), workdir).run()
    verdicts = judge(run)        # each `expect:` outcome met or not, with what happened instead

`aisre drill SCENARIO.yaml [--json OUT]` is the command (exit 1 when an expectation failed).
"""

from aisre.drills.engine import Drill
from aisre.drills.report import Verdict, fault_detections, judge, render, to_json
from aisre.drills.scenario import Scenario, load_scenario, scenario_from_dict
from aisre.drills.timeline import DrillRun, Event

__all__ = [
    "Drill",
    "DrillRun",
    "Event",
    "Scenario",
    "Verdict",
    "fault_detections",
    "judge",
    "load_scenario",
    "render",
    "scenario_from_dict",
    "to_json",
]
