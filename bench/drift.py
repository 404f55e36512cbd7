"""Drift benchmark: aisre vs Evidently, NannyML and Alibi Detect on the same generated data.

    .venv/bin/python bench/drift.py [--rows 100000] [--columns 25] [--tools aisre,evidently,nannyml,alibi]
                                    [--timeout 600] [--seed 7] [--json OUT.json] [--profile]
                                    [--aisre-compat evidently|nannyml]

Generates (numpy, seeded) a reference and a current table of `--rows` rows each, with 4/5
numeric and 1/5 categorical (string) columns; some columns shift in the current table (by
a lot, or by 0.05 std, which only p-value tests notice), the rest do not. Both are written
to Parquet in a temp dir. Each tool then runs in its own subprocess under its own
virtualenv (bench/peers/run_peer.py; aisre under .venv, peers under bench/.venvs/TOOL, see
docs/benchmarks-drift.md for how they were built), reads the Parquet files with pandas,
and reports the wall time of the drift computation alone (loading is timed separately),
peak RSS (`ru_maxrss` of that process: interpreter, libraries, data and computation) and
its per-column verdicts. Compared, per tool: time and peak memory vs aisre, and per-column
agreement with Evidently's legacy DataDriftPreset (same method chosen, same verdict).
Target (issue): aisre >= 50x faster than Evidently's preset with the same per-column
verdicts, and memory below the input size (pandas bytes of the two DataFrames).

Peers: Evidently legacy `DataDriftPreset` (default per-column tests); NannyML
`UnivariateDriftCalculator` (default methods, one chunk per period, constant 0.1 threshold
because the default threshold needs several reference chunks); Alibi Detect `TabularDrift`
(KS for numeric, chi-square for categorical via `categories_per_feature`, p_val 0.05).
No network is used at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "bench" / "peers" / "run_peer.py"
ALL_TOOLS = ("aisre", "evidently", "nannyml", "alibi")
BASELINE = "evidently"

# --- data ----------------------------------------------------------------------------------
# Each pattern: (suffix, draw(rng, n, current)). Shifts are either large (every method
# flags them) or small (0.05 std: p-value tests flag them at 100k+ rows, distances do not).
# "4cats_js_borderline" sits between the two Jensen-Shannon conventions: distance ~0.090 with
# the natural log (Evidently: below its 0.1 threshold), ~0.108 with log base 2 (NannyML: above).


def _freq(p):
    return np.asarray(p, dtype=float) / np.sum(p)


def _zipf(k: int) -> np.ndarray:
    return _freq(1 / np.arange(1, k + 1))


NUMERIC = [
    ("normal", lambda r, n, c: r.normal(0.0, 1.0, n)),
    ("mean_shift_big", lambda r, n, c: r.normal(0.5 if c else 0.0, 1.0, n)),
    ("lognormal", lambda r, n, c: r.lognormal(0.0, 0.5, n)),
    ("mean_shift_small", lambda r, n, c: r.normal(10.05 if c else 10.0, 1.0, n)),
    ("uniform", lambda r, n, c: r.uniform(0.0, 100.0, n)),
    ("scale_shift", lambda r, n, c: r.normal(0.0, 1.5 if c else 1.0, n)),
    ("exp_scale_shift", lambda r, n, c: r.exponential(1.5 if c else 1.0, n)),
    ("int4_freq_shift", lambda r, n, c: r.choice(4, n, p=_freq([1, 2, 3, 4] if c else [4, 3, 2, 1]))),
    ("gamma", lambda r, n, c: r.gamma(2.0, 2.0, n)),
    ("student_t", lambda r, n, c: r.standard_t(5, n)),
]
CATEGORICAL = [
    ("5cats", 5, lambda k, c: np.ones(k)),
    ("10cats_freq_shift", 10, lambda k, c: np.arange(k, 0, -1) if c else np.arange(1, k + 1)),
    ("4cats_js_borderline", 4, lambda k, c: np.array([5, 5, 3, 3]) if c else np.ones(k)),
    ("50cats_small_shift", 50, lambda k, c: _zipf(k) * 0.95 + 0.05 / k if c else _zipf(k)),
    ("binary_shift", 2, lambda k, c: np.array([7, 3]) if c else np.array([1, 1])),
]


def column_names(n_numeric: int, n_categorical: int) -> tuple[list[str], list[str]]:
    numeric = [f"n{i:02d}_{NUMERIC[i % len(NUMERIC)][0]}" for i in range(n_numeric)]
    categorical = [f"c{i:02d}_{CATEGORICAL[i % len(CATEGORICAL)][0]}" for i in range(n_categorical)]
    return numeric, categorical


def make_table(rows: int, n_numeric: int, n_categorical: int, seed: int, current: bool) -> pa.Table:
    numeric, categorical = column_names(n_numeric, n_categorical)
    arrays = {}
    for i, name in enumerate(numeric):
        rng = np.random.default_rng([seed, int(current), 0, i])
        arrays[name] = NUMERIC[i % len(NUMERIC)][1](rng, rows, current)
    for i, name in enumerate(categorical):
        rng = np.random.default_rng([seed, int(current), 1, i])
        _, k, weights = CATEGORICAL[i % len(CATEGORICAL)]
        labels = np.array([f"v{j:02d}" for j in range(k)], dtype=object)
        arrays[name] = labels[rng.choice(k, rows, p=_freq(weights(k, current)))]
    return pa.table({name: pa.array(values) for name, values in arrays.items()})


def generate(data_dir: Path, rows: int, columns: int, seed: int) -> dict:
    n_categorical = columns // 5
    n_numeric = columns - n_categorical
    for part in ("reference", "current"):
        table = make_table(rows, n_numeric, n_categorical, seed, current=part == "current")
        pq.write_table(table, data_dir / f"{part}.parquet")
        del table
        pa.default_memory_pool().release_unused()
    numeric, categorical = column_names(n_numeric, n_categorical)
    meta = {"rows": rows, "numeric": numeric, "categorical": categorical, "seed": seed}
    (data_dir / "meta.json").write_text(json.dumps(meta))
    return meta


# --- running the tools ----------------------------------------------------------------------


def python_for(tool: str) -> Path:
    return ROOT / ".venv" / "bin" / "python" if tool == "aisre" else ROOT / "bench" / ".venvs" / tool / "bin" / "python"


def run_tool(tool: str, data_dir: Path, timeout: float, compat: str | None = None) -> dict:
    """Run one tool in its own process; returns its RESULT dict or {"tool", "error"}."""
    python = python_for(tool)
    if not python.exists():
        return {"tool": tool, "error": f"no venv: {python}"}
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=path, AISRE_DRIFT_COMPAT=compat or "")
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(python), str(RUNNER), tool, str(data_dir)], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"tool": tool, "error": f"timeout after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result["process_s"] = time.perf_counter() - started
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"tool": tool, "error": f"exit {proc.returncode}: " + " | ".join(tail)}


# --- comparing ------------------------------------------------------------------------------


def agreement(result: dict, baseline: dict | None) -> dict:
    """Per-column comparison with the baseline: same method name, same drift verdict."""
    if not baseline or "verdicts" not in baseline or "verdicts" not in result:
        return {}
    ours, theirs = result["verdicts"], baseline["verdicts"]
    names = [c for c in theirs if c in ours]
    method_diff = [c for c in names if ours[c]["method"] != theirs[c]["method"]]
    verdict_diff = [c for c in names if ours[c]["drift"] != theirs[c]["drift"]]
    same = [c for c in names if c not in method_diff]
    stat_diff = {c: _rel_diff(ours[c]["statistic"], theirs[c]["statistic"]) for c in same}
    return {
        "max_stat_rel_diff": max(stat_diff.values(), default=0.0),
        "stat_diff": sorted(c for c, d in stat_diff.items() if d > 1e-6),
        "compared": len(names),
        "missing": sorted(set(theirs) - set(ours)),
        "method_diff": method_diff,
        "verdict_diff": verdict_diff,
    }


def _rel_diff(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a == b else float("inf")
    return abs(a - b) / max(abs(b), 1e-12)


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.1f}x" if base else "-"


def summary_table(results: list[dict]) -> list[str]:
    aisre = next((r for r in results if r["tool"] == "aisre" and "error" not in r), None)
    base = next((r for r in results if r["tool"] == BASELINE and "error" not in r), None)
    head = (
        "| tool | version | rows | columns | load (s) | drift time (s) | peak RSS (MB) | RSS after load (MB) "
        "| input in this process (MB) | time vs aisre | peak RSS vs aisre | same method as Evidently "
        "| same verdict as Evidently |"
    )
    lines = [head, "| " + " | ".join(["---"] * 3 + ["---:"] * 10) + " |"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['tool']} | - | - | - | - | {r['error']} |" + " - |" * 7)
            continue
        agree = agreement(r, base) if r is not base else {}
        n = agree.get("compared", 0)
        same_method = f"{n - len(agree['method_diff'])}/{n}" if agree else "-"
        same_verdict = f"{n - len(agree['verdict_diff'])}/{n}" if agree else "-"
        lines.append(
            f"| {r['tool']} | {r['version']} | {r['rows']:,} | {r['columns']} | {r['load_s']:.2f} "
            f"| {r['drift_s']:.3f} | {r['peak_rss_mb']:,.0f} | {r['rss_after_load_mb']:,.0f} "
            f"| {r['input_bytes'] / 2**20:,.0f} | {_ratio(r['drift_s'], aisre and aisre['drift_s'])} "
            f"| {_ratio(r['peak_rss_mb'], aisre and aisre['peak_rss_mb'])} | {same_method} | {same_verdict} |"
        )
    return lines


def _cell(v: dict | None) -> str:
    if v is None:
        return "-"
    score = v["p_value"] if v["p_value"] is not None else v["statistic"]
    return f"{v['method']} {score:.3g} {'DRIFT' if v['drift'] else 'ok'}"


def column_table(results: list[dict], only: set[str] | None) -> list[str]:
    """Per column: method, score (p-value for tests, else statistic) and verdict per tool."""
    ok = [r for r in results if "verdicts" in r]
    if not ok:
        return []
    names = [c for c in ok[0]["verdicts"] if only is None or c in only]
    lines = ["| column | " + " | ".join(r["tool"] for r in ok) + " |", "| --- |" + " --- |" * len(ok)]
    lines += [f"| {c} | " + " | ".join(_cell(r["verdicts"].get(c)) for r in ok) + " |" for c in names]
    return lines


def _names(names: list[str], show: int = 8) -> str:
    more = f", ... {len(names) - show} more" if len(names) > show else ""
    return f"{len(names)} [" + ", ".join(names[:show]) + more + "]"


def disagreements(results: list[dict]) -> list[str]:
    base = next((r for r in results if r["tool"] == BASELINE and "verdicts" in r), None)
    lines = []
    for r in results:
        if r is base or "verdicts" not in r or base is None:
            continue
        agree = agreement(r, base)
        lines.append(
            f"{r['tool']} vs {BASELINE}: method differs on {_names(agree['method_diff'])}; "
            f"verdict differs on {_names(agree['verdict_diff'])}; among same-method columns the statistic "
            f"differs (relative > 1e-6) on {_names(agree['stat_diff'])}, max relative difference "
            f"{agree['max_stat_rel_diff']:.3g}"
        )
    return lines


INPUT_SIZE_CODE = """
import sys, pandas as pd
frames = [pd.read_parquet(f"{sys.argv[1]}/{p}.parquet") for p in ("reference", "current")]
print(int(sum(f.memory_usage(deep=True).sum() for f in frames)))
"""


def input_size(data_dir: Path) -> int:
    """Bytes of the two DataFrames in memory as aisre's venv (pandas) loads them, in a child process
    so that this one stays small while the tools run."""
    proc = subprocess.run(
        [str(python_for("aisre")), "-c", INPUT_SIZE_CODE, str(data_dir)], capture_output=True, text=True, check=True
    )
    return int(proc.stdout.strip())


# --- optional: profile update rate -------------------------------------------------------------


PROFILE_CODE = """
import time, numpy as np
from aisre.monitor.profiles import profile as p
rng = np.random.default_rng(0)
edges = p.reference_edges(rng.normal(size=100_000))
x = rng.normal(0.1, 1.0, VALUES)
for label, batch, quantiles in [("one call", VALUES, False), ("batches of 1,000", 1000, False),
                                ("one call + KLL sketch", VALUES, True)]:
    try:
        prof = p.NumericProfile(edges.copy(), sketch=p._new_sketch() if quantiles else None)
    except Exception as exc:
        print(f"{label}: skipped ({exc})"); continue
    t = time.perf_counter()
    for i in range(0, VALUES, batch):
        prof.update(x[i:i + batch])
    dt = time.perf_counter() - t
    print(f"{label}: {VALUES / dt:,.0f} values/s ({dt:.3f} s for {VALUES:,} values, {len(edges) + 1} bins)")
"""


def profile_rate(values: int = 1_000_000) -> str | None:
    """Values/s (one process, numpy single-threaded here) for updating one numeric column profile."""
    code = PROFILE_CODE.replace("VALUES", str(values))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([str(python_for("aisre")), "-c", code], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        return None
    return "\n  " + proc.stdout.strip().replace("\n", "\n  ")


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in each of reference and current")
    parser.add_argument("--columns", type=int, default=25, help="4/5 numeric, 1/5 categorical")
    parser.add_argument("--tools", default=",".join(ALL_TOOLS))
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per tool")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--aisre-compat", choices=["evidently", "nannyml"], help="drift(..., compat=...)")
    parser.add_argument("--json", type=Path, help="also write all results to this file")
    parser.add_argument("--profile", action="store_true", help="also time aisre's numeric profile update")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(ALL_TOOLS)
    if unknown:
        sys.exit(f"unknown tools: {sorted(unknown)}; choose from {ALL_TOOLS}")
    with tempfile.TemporaryDirectory(prefix="aisre-drift-bench-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        meta = generate(data_dir, args.rows, args.columns, args.seed)
        gen_s = time.perf_counter() - started
        size = input_size(data_dir)
        parquet_mb = sum(f.stat().st_size for f in data_dir.glob("*.parquet")) / 2**20
        print(
            f"data: {args.rows:,} + {args.rows:,} rows x {args.columns} columns "
            f"({len(meta['numeric'])} numeric, {len(meta['categorical'])} categorical), seed {args.seed}; "
            f"generated + written in {gen_s:.1f} s; Parquet {parquet_mb:,.0f} MB; "
            f"in memory (pandas, both frames) {size / 2**20:,.0f} MB",
            flush=True,
        )
        results = []
        for tool in tools:
            result = run_tool(tool, data_dir, args.timeout, args.aisre_compat)
            status = result.get("error") or f"drift {result['drift_s']:.3f} s, peak {result['peak_rss_mb']:,.0f} MB"
            print(f"  {tool}: {status}", file=sys.stderr, flush=True)
            results.append(result)
    print()
    print("\n".join(summary_table(results)))
    print()
    print("\n".join(disagreements(results)))
    print()
    print("\n".join(column_table(results, None if args.columns <= 30 else _disagreeing(results))))
    if args.profile:
        print(f"\nprofile update (aisre.monitor.profiles.profile): {profile_rate() or 'not available'}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "input_bytes": size,
                    "generate_s": gen_s,
                    "results": results,
                },
                indent=1,
            )
        )
    return 0


def _disagreeing(results: list[dict]) -> set[str]:
    base = next((r for r in results if r["tool"] == BASELINE and "verdicts" in r), None)
    names: set[str] = set()
    for r in results:
        if r is not base and "verdicts" in r:
            agree = agreement(r, base)
            names.update(agree.get("method_diff", []) + agree.get("verdict_diff", []))
    return names


if __name__ == "__main__":
    sys.exit(main())
