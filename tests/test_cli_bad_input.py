"""Bad input answered everywhere (issue #8): every CLI command, given nasty arguments, exits 2 with one line
naming the option and the value or file -- never a traceback -- and `monitor check` tells an empty window
(exit 3, "no data") from a healthy one.

The matrix runs in-process through typer's CliRunner (one interpreter start instead of ~80); a few
end-to-end cases run `python -m aisre` in a subprocess, where a traceback would be printed as is.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import aisre
from aisre.cli.main import app
from aisre.monitor.profiles import Reference

from .conftest import PYTHON

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root reads a chmod 000 file anyway


def _no_constants(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"aisre {' '.join(args)} raised instead of answering:\n{trace}")
    return result


def aisre_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "aisre", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good and bad inputs side by side, and a store with fraud/v1 records of inputs x and country."""
    d = tmp_path_factory.mktemp("bad-input")
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=1000), "age": rng.normal(40, 9, 1000), "country": ["FR", "DE"] * 500})
    cur = ref.copy()
    cur.loc[:499, "x"] = np.inf
    ref.to_csv(d / "ref.csv", index=False)
    cur.to_csv(d / "cur_inf.csv", index=False)
    ref.to_parquet(d / "ref.parquet")
    Reference.fit(ref, sample_size=500).save(d / "ref.json")
    (d / "obj.json").write_text("{}")
    (d / "arr.json").write_text("[]")
    (d / "trunc.json").write_text('{"format": "aisre.reference/1", "samp')
    pq.write_table(pa.table({"x": [1.0, 2.0]}), d / "notref.json")
    (d / "bad.parquet").write_text("garbage")
    (d / "empty.csv").write_text("")
    (d / "empty.json").write_text("")
    (d / "adir").mkdir()
    (d / "dup.csv").write_text("x,x\n1,2\n3,4\n")
    (d / "latin1.csv").write_bytes(b"x,c\n1,caf\xe9\n2,a\n")
    pq.write_table(pa.table({"x": [[1, 2], [3]]}), d / "nested.parquet")
    (d / "locked.csv").write_text("x\n1\n")
    (d / "locked.csv").chmod(0)
    (d / "gw.yaml").write_text(
        f"store: sqlite:///{d / 'gw.db'}\nmodels:\n  chat:\n    protocol: openai\n"
        "    versions:\n      v1: {replicas: ['http://127.0.0.1:9/v1']}\n"
    )
    now = time.time()
    with aisre.Monitor("fraud", "v1", store=f"sqlite:///{d / 'aisre.db'}") as m:
        for i in range(300):
            m.record({"x": float(rng.normal()), "country": "FR"}, i % 2, latency_s=0.01, ts=now - 600 + i)
    return d


NASTY = [
    # aisre drift: files
    ("drift {d}/nope.csv {d}/ref.csv", "REF: no such file"),
    ("drift {d}/adir {d}/ref.csv", "REF: {d}/adir is a directory, expected a file"),
    ("drift {d}/ref.csv {d}/empty.csv", "CUR: cannot read {d}/empty.csv"),
    ("drift {d}/bad.parquet {d}/ref.csv", "REF: cannot read {d}/bad.parquet"),
    ("drift {d}/notref.json {d}/ref.csv", "REF: expected a .csv, .tsv or .parquet file"),
    ("drift {d}/dup.csv {d}/dup.csv", "REF: columns ['x'] appear more than once"),
    (
        "drift {d}/latin1.csv {d}/latin1.csv",
        "REF: column 'c': expected numbers, text, booleans or times, got Arrow type binary",
    ),
    (
        "drift {d}/nested.parquet {d}/nested.parquet",
        "REF: column 'x': expected numbers, text, booleans or times, got Arrow type list",
    ),
    pytest.param("drift {d}/locked.csv {d}/ref.csv", "REF: cannot read", marks=pytest.mark.skipif(ROOT, reason="root")),
    ("drift {d}/ref.csv {d}/ref.csv --json {d}/no/such/dir/d.json", "--json: cannot write {d}/no/such/dir/d.json"),
    ("drift {d}/ref.csv {d}/ref.csv --json {d}/adir", "--json: {d}/adir is a directory"),
    ("drift {d}/ref.csv {d}/ref.csv --html {d}/ref.csv/r.html", "--html: cannot write"),
    # aisre drift: option values
    ("drift {d}/ref.csv {d}/ref.csv --share 2", "--share: expected a share of columns from 0 to 1"),
    ("drift {d}/ref.csv {d}/ref.csv --share nan", "--share: expected"),
    ("drift {d}/ref.csv {d}/ref.csv --share -1", "--share: expected"),
    ("drift {d}/ref.csv {d}/ref.csv --method nope", "--method: expected auto or one of"),
    ("drift {d}/ref.csv {d}/ref.csv --compat nope", "--compat: expected one of evidently, nannyml"),
    ("drift {d}/ref.csv {d}/ref.csv --correction nope", "--correction: expected one of"),
    ("drift {d}/ref.csv {d}/ref.csv --infinite nope", "--infinite: expected one of flag, drop, error"),
    ("drift {d}/ref.csv {d}/ref.csv --columns ,", "--columns: expected comma-separated column names"),
    ("drift {d}/ref.csv {d}/cur_inf.csv --infinite error", "column 'x': the current data has 500 infinite"),
    # aisre monitor reference
    ("monitor reference {d}/ref.csv --out {d}/no/dir/r.json", "--out: cannot write {d}/no/dir/r.json"),
    ("monitor reference {d}/ref.csv --out {d}/adir", "--out: {d}/adir is a directory"),
    ("monitor reference {d}/ref.csv --out {d}/r.json --sample-size -5", "--sample-size: expected"),
    ("monitor reference {d}/ref.csv --out {d}/r.json --sample-size 0", "--sample-size: expected"),
    ("monitor reference {d}/ref.csv --out {d}/r.json --bins 0", "--bins: expected"),
    ("monitor reference {d}/ref.csv --out {d}/r.json --bins quantile:x", "--bins: expected"),
    ("monitor reference {d}/ref.csv --out {d}/r.json --bins quantile:-2", "--bins: expected"),
    ("monitor reference {d}/ref.csv --out {d}/r.json --bins nope", "--bins: expected"),
    ("monitor reference {d}/ref.csv --out {d}/r.json --bins 99999999999999999999", "--bins: expected"),
    ("monitor reference {d}/empty.csv --out {d}/r.json", "DATA: cannot read"),
    ("monitor reference {d}/adir --out {d}/r.json", "DATA: {d}/adir is a directory"),
    ("monitor reference {d}/nested.parquet --out {d}/r.json", "column 'x': expected numbers, text, booleans or times"),
    ("monitor reference {d}/dup.csv --out {d}/r.json", "columns ['x'] appear more than once"),
    # aisre monitor check: references that are not references
    ("{check} -r {d}/arr.json", "--reference: {d}/arr.json is not an aisre reference (a JSON list"),
    ("{check} -r {d}/obj.json", "--reference: {d}/obj.json is not an aisre reference"),
    ("{check} -r {d}/trunc.json", "--reference: cannot read reference {d}/trunc.json"),
    ("{check} -r {d}/notref.json", "not UTF-8 JSON"),
    ("{check} -r {d}/empty.json", "--reference: cannot read reference"),
    ("{check} -r {d}/nope.json", "--reference: no such file"),
    ("{check} -r {d}/adir", "--reference: {d}/adir is a directory"),
    ("{check} -r {d}/bad.parquet", "--reference: cannot read"),
    (
        "{check} -r {d}/ref.json --reference-outputs {d}/arr.json",
        "--reference-outputs: {d}/arr.json is not an aisre reference",
    ),
    # aisre monitor check: options
    ("{check} -r {d}/ref.json --since 7x", "--since: expected a duration like 15m"),
    ("{check} -r {d}/ref.json --since 1h --until 2h", "--until: expected a time after --since, got --since '1h'"),
    ("{check} -r {d}/ref.json --since 2026-01-02 --until 2026-01-02", "--until: expected a time after --since"),
    ("{check} -r {d}/ref.json --method nope", "--method: unknown drift method 'nope'"),
    ("{check} -r {d}/ref.json --store sqlite:///{d}/nope.db", "no store at {d}/nope.db"),
    ("{check} -r {d}/ref.json --store sqlite:///{d}/adir", "cannot open store"),
    ("{check} -r {d}/ref.json --store sqlite:///{d}/ref.csv", "cannot open store"),
    ("monitor check -m fraud -v v1 -r {d}/ref.json -c {d}/adir", "cannot read {d}/adir"),
    # aisre log
    ("log tail -n 99999999999999999999999 --store {store}", "-n: expected a count >= 0 and <= 9223372036854775807"),
    ("log tail -n 9223372036854775808 --store {store}", "got 9223372036854775808"),
    ("log tail -n -1 --store {store}", "-n: expected a count >= 0"),
    ("log tail -n x --store {store}", "Invalid value for '-n'"),
    ("log stats --since 7x --store {store}", "--since: expected a duration"),
    ("log stats --since 1h --until 2h --store {store}", "--until: expected a time after --since"),
    (
        "log export --parquet {d}/x.parquet --since 1d --until 2d --store {store}",
        "--until: expected a time after --since",
    ),
    ("log export --parquet {d}/no/dir/x.parquet --store {store}", "--parquet: cannot write"),
    ("log export --parquet {d}/adir --store {store}", "--parquet: cannot write {d}/adir"),
    ("log prune --older-than-days nan --store {store}", "--older-than-days: expected a number > 0"),
    ("log prune --older-than-days -1 --store {store}", "--older-than-days: expected a number > 0"),
    ("log stats --store sqlite:///", "store URL: expected 'sqlite:///PATH'"),
    ("log stats --store bogus://x", "store URL: expected 'sqlite:///PATH'"),
    ("log stats -c {d}/nope.yaml", "file not found"),
    # aisre keys (cli/keys.py is being edited elsewhere: tested, not fixed here)
    (
        "keys create --name b --store sqlite:///{d}/keys.db --rpm -5",
        "--rpm: expected a whole number from 1 to 100,000,000",
    ),
    ("keys create --name e --store sqlite:///{d}/keys.db --budget-usd nan", "--budget-usd: expected"),
    ("keys create --name h --store sqlite:///{d}/keys.db --expires 7x", "--expires: expected a duration"),
    ("keys create --name '' --store sqlite:///{d}/keys.db", "--name: expected 1 to 100 characters"),
    ("keys create --name k --store sqlite:///{d}/adir", "--store: cannot open store"),
    ("keys create --name k --store sqlite:///{d}/no/dir/k.db", "does not exist"),
    ("keys list --store sqlite:///{d}/nope.db", "no store at"),
    ("keys revoke nope --store {store}", "ID_OR_NAME: no active API key named 'nope'"),
    ("keys create --name big --store sqlite:///{d}/keys.db --rpm 99999999999999999999999", "--rpm: expected"),
    ("keys create --name big --store sqlite:///{d}/keys.db --tpm 9223372036854775808", "--tpm: expected"),
    ("keys create --name big --store sqlite:///{d}/keys.db --max-concurrent 0", "--max-concurrent: expected"),
    # aisre check-config
    ("check-config {d}/nope.yaml", "file not found"),
    ("check-config {d}/adir", "cannot read {d}/adir"),
    ("check-config {d}/notref.json", "cannot read {d}/notref.json"),
    ("check-config {d}/ref.csv", "expected a mapping"),
    # aisre serve, failing before it binds
    ("serve -c {d}/nope.yaml", "file not found"),
    ("serve -c {d}/adir", "cannot read {d}/adir"),
    ("serve -c {d}/obj.json", "no models configured"),
]


CHECK = "monitor check -m fraud -v v1 --store {store}"


@pytest.mark.parametrize(("command", "message"), NASTY)
def test_nasty_arguments_exit_2_with_one_line_naming_the_problem(files: Path, command: str, message: str):
    subs = {"d": str(files), "store": f"sqlite:///{files / 'aisre.db'}"}
    result = run(*shlex.split(command.replace("{check}", CHECK).format(**subs)))
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert message.format(**subs) in " ".join(output.split()), output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "-c", "{d}/gw.yaml", "--log-level", "nope", "--port", "0"], "--log-level"),
        (["serve", "-c", "{d}/gw.yaml", "--port", "-1"], "--port"),
        (["serve", "-c", "{d}/gw.yaml", "--port", "99999999999999999999"], "--port"),
        (["serve", "-c", "{d}/gw.yaml", "--port", "70000"], "--port"),
        (["serve", "-c", "{d}/gw.yaml", "--workers", "-3"], "--workers"),
        (["serve", "-c", "{d}/gw.yaml", "--host", "not a host", "--port", "0"], "--host"),
    ],
)
def test_serve_refuses_bad_options_before_binding(files: Path, args: list[str], message: str):
    out = aisre_cli(*[a.format(d=files) for a in args])
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert "aisre gateway on" not in out.stdout + out.stderr, "no banner before a refusal"


def test_serve_on_a_port_already_taken_says_so_before_the_banner(files: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = aisre_cli("serve", "-c", str(files / "gw.yaml"), "--port", str(port))
    assert out.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "aisre gateway on" not in out.stdout + out.stderr


def test_drift_json_is_strict_json_and_the_table_counts_infinities(files: Path, tmp_path: Path):
    nan_cur = pd.read_csv(files / "ref.csv")
    nan_cur["age"] = np.nan  # a column that stops arriving: statistic NaN
    nan_cur["x"] = pd.read_csv(files / "cur_inf.csv")["x"]
    nan_cur.to_csv(tmp_path / "cur.csv", index=False)
    out = aisre_cli("drift", str(files / "ref.csv"), str(tmp_path / "cur.csv"), "--json", str(tmp_path / "drift.json"))
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "drift.json").read_text(), parse_constant=_no_constants)
    assert doc["columns"]["age"]["statistic"] is None and doc["columns"]["age"]["drift"] is True
    x = doc["columns"]["x"]
    assert x["drift"] is True and x["infinite_current"] == 500 and x["infinite_reference"] == 0
    row = next(line for line in out.stdout.splitlines() if line.startswith("│ x "))
    assert "0 / 500" in row
    assert (
        "note: x: 0 of 1000 reference values (0.0%) and 500 of 1000 current values (50.0%) are infinite" in out.stdout
    )


def test_drift_infinite_drop_keeps_the_old_verdict_but_still_shows_the_count(files: Path):
    result = run("drift", str(files / "ref.csv"), str(files / "cur_inf.csv"), "--infinite", "drop", "--json", "-")
    assert result.exit_code == 0, result.output
    x = json.loads(result.stdout, parse_constant=_no_constants)["columns"]["x"]
    assert x["drift"] is False and x["infinite_current"] == 500


def test_unwritable_json_path_fails_before_the_work_in_a_subprocess(files: Path):
    out = aisre_cli("drift", str(files / "ref.csv"), str(files / "ref.csv"), "--json", "/nonexistent-dir/d.json")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--json: cannot write /nonexistent-dir/d.json: directory /nonexistent-dir does not exist" in out.stderr


def test_monitor_check_on_an_unknown_model_is_no_data_listing_what_the_store_has(files: Path):
    store = f"sqlite:///{files / 'aisre.db'}"
    result = run("monitor", "check", "-m", "frad", "-v", "v1", "-r", str(files / "ref.json"), "--store", store)
    assert result.exit_code == 3, result.output
    assert "no data: the store has no records of --model 'frad' --version 'v1'; it has: fraud/v1 (300 records)" in (
        " ".join(result.stderr.split())
    )
    assert aisre.open_store(store).signals(model="frad") == []  # a typo leaves nothing behind


def test_monitor_check_on_a_quiet_window_is_no_data_not_healthy(files: Path):
    store = f"sqlite:///{files / 'aisre.db'}"
    args = ["monitor", "check", "-m", "fraud", "-v", "v1", "-r", str(files / "ref.json"), "--store", store]
    result = run(*args, "--since", "2h", "--until", "1h")
    assert result.exit_code == 3 and "no data: no records of fraud/v1 in the window --since 2h --until 1h" in (
        " ".join(result.stderr.split())
    )
    as_json = run(*args, "--since", "2h", "--until", "1h", "--json")
    assert as_json.exit_code == 3
    signals = json.loads(as_json.stdout, parse_constant=_no_constants)
    assert [(s["name"], s["value"]) for s in signals] == [("window_rows", 0.0)]


def test_monitor_check_reports_each_reference_column_missing_from_the_records(files: Path):
    store = f"sqlite:///{files / 'aisre.db'}"
    args = ["monitor", "check", "-m", "fraud", "-v", "v1", "-r", str(files / "ref.json"), "--store", store]
    table = run(*args)
    assert table.exit_code == 0, table.output
    assert "missing: reference column 'age' is not in the stored inputs of fraud/v1" in table.stdout
    as_json = run(*args, "--json")
    assert as_json.exit_code == 0
    signals = json.loads(as_json.stdout, parse_constant=_no_constants)  # stdout stays pure JSON
    missing = [s for s in signals if s["name"] == "data_column_missing"]
    assert [(s["labels"], s["breached"]) for s in missing] == [({"feature": "age"}, True)]
    assert "missing: reference column 'age'" in as_json.stderr


def test_monitor_check_json_stays_strict_when_a_feature_stops_arriving(files: Path, tmp_path: Path):
    """An all-missing feature has no statistic (NaN): the signal's value is null, not a bare NaN."""
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    with aisre.Monitor("fraud", "v1", store=url) as m:
        for i in range(50):
            m.record({"x": None, "country": "FR"}, i % 2, latency_s=0.01)
    args = ["monitor", "check", "-m", "fraud", "-v", "v1", "-r", str(files / "ref.json"), "--store", url, "--json"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    signals = json.loads(result.stdout, parse_constant=_no_constants)
    x = next(s for s in signals if s["labels"].get("feature") == "x")
    assert x["value"] is None and x["breached"] is True


def test_check_window_refuses_until_not_after_since_and_lists_missing_columns(files: Path):
    from aisre.errors import InvalidParameterError
    from aisre.monitor.jobs.checks import check_window

    store = aisre.open_store(f"sqlite:///{files / 'aisre.db'}")
    reference = pd.read_csv(files / "ref.csv")
    with pytest.raises(InvalidParameterError, match="until: expected a time after since"):
        check_window(store, reference, "fraud", "v1", since=100.0, until=100.0)
    check = check_window(store, reference, "fraud", "v1")
    assert not check.no_data and check.missing_inputs == ["age"]
    assert check_window(store, reference, "fraud", "v9").no_data
