"""Detection delay per fault kind: every shipped drill (examples/drills/) over several seeds.

    .venv/bin/python bench/drills.py [--seeds 5] [--out table.md]

For each scenario and seed, the drill runs as `aisre drill --seed N` does; per fault it records the
simulated delay to the first finding or act (any kind) and to the first of each kind (signal, alert,
breaker, playbook, registry, incident). Prints one markdown table: median [min-max] over the seeds,
the pass count, and the wall time of a run.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

from aisre.drills import Drill, fault_detections, judge, load_scenario
from aisre.drills.report import hms

KINDS = ("signal", "alert", "breaker", "playbook", "registry")


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return hms(med) if lo == hi else f"{hms(med)} [{hms(lo)}-{hms(hi)}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("aisre").setLevel(logging.ERROR)  # the table is the output
    rows = []
    for path in sorted(Path("examples/drills").glob("*.yaml")):
        base = load_scenario(path)
        delays: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        passed, walls = 0, []
        for seed in range(1, args.seeds + 1):
            scenario = base.model_copy(update={"seed": seed})
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                run = Drill(scenario, Path(tmp)).run()
            walls.append(time.perf_counter() - started)
            passed += all(v.passed for v in judge(run))
            for f in fault_detections(run):
                d = delays[(f["fault"], f["kind"])]
                if f["detection_delay_s"] is not None:
                    d["any"].append(f["detection_delay_s"])
                for kind, value in f["delay_by_kind_s"].items():
                    d[kind].append(value)
        wall = statistics.median(walls)
        for (_fault, kind), d in delays.items():
            cells = " | ".join(spread(d.get(k, [])) for k in ("any", *KINDS))
            rows.append(f"| {base.name} | {kind} | {cells} | {passed}/{args.seeds} | {wall:.1f} |")
    header = (
        "| scenario | fault | first detection | signal | alert | breaker | playbook | rollback (registry) "
        "| passed | wall s |\n| --- | --- | --- | --- | --- | --- | --- | --- | ---: | ---: |"
    )
    table = "\n".join([header, *rows])
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
