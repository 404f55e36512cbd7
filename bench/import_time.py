"""How long `import aisre` takes in a fresh interpreter, and what the first use of each layer costs.

    .venv/bin/python bench/import_time.py [--runs 15]

Each statement runs in its own new process (so nothing is cached in memory); the figure is
the wall time of the statement alone, measured inside the process with perf_counter, minus
nothing. The interpreter's own start-up is excluded. Prints min / median / max in ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

STATEMENTS = {
    "import aisre": "import aisre",
    "aisre.Monitor (record layer)": "import aisre; aisre.Monitor",
    "aisre.drift (statistics)": "import aisre; aisre.drift",
    "aisre.monitor (whole catalogue)": "import aisre; aisre.monitor.CBPE",
    "aisre.gateway.app (server)": "import aisre.gateway.app",
}

PROBE = """
import time
t = time.perf_counter()
{stmt}
print((time.perf_counter() - t) * 1000)
"""


def measure(stmt: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        res = subprocess.run(
            [sys.executable, "-c", PROBE.format(stmt=stmt)], capture_output=True, text=True, check=True
        )
        out.append(float(res.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"{'statement':36} {'min ms':>8} {'median ms':>10} {'max ms':>8}")
    for name, stmt in STATEMENTS.items():
        times = measure(stmt, args.runs)
        print(f"{name:36} {min(times):8.1f} {statistics.median(times):10.1f} {max(times):8.1f}")


if __name__ == "__main__":
    main()
