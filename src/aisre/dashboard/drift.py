"""The HTML drift report of one stored window against a monitoring job's reference (the same page as
`aisre drift --html`): the dashboard's one read of raw records, bounded to that window.

The job is `monitor` (or the first `monitors:` job of the version with a `data_drift` check); its
reference is loaded as the monitoring jobs load it (`aisre.monitor.jobs.reference`) and compared with
the drift options the job itself uses, so the page explains the very verdict the job stored. Without
`since`/`until` the window is the newest one the job checked.
"""

from __future__ import annotations

from typing import Any

from aisre.config import AisreConfig
from aisre.config.monitors import MonitorJobConfig
from aisre.dashboard import params
from aisre.dashboard.params import BadParameter, UnknownItem
from aisre.errors import DataError
from aisre.store.base import RecordFilter
from aisre.store.codec import iso_time
from aisre.store.sqlite import SQLiteStore

HISTORY_WINDOWS_S = 7 * 86_400.0
#: The longest window the page reads records for (this is the dashboard's one read of raw records).
MAX_WINDOW_S = 7 * 86_400.0


def _job(config: AisreConfig, model: str, version: str, monitor: str | None) -> MonitorJobConfig:
    mine = [j for j in config.monitors if j.model == model and j.version in (None, version)]
    if monitor is not None:
        for job in mine:
            if job.name == monitor:
                if "data_drift" not in job.checks:
                    raise BadParameter("monitor", f"monitoring job {monitor!r} has no data_drift check")
                return job
        known = ", ".join(j.name for j in mine) or "none"
        raise UnknownItem("monitor", f"no monitoring job {monitor!r} for {model}/{version}; jobs: {known}")
    for job in mine:
        if "data_drift" in job.checks:
            return job
    known = ", ".join(f"{j.name} ({j.model}/{j.version or '*'})" for j in config.monitors) or "none configured"
    raise UnknownItem("monitor", f"no monitoring job with a data_drift check watches {model}/{version}; jobs: {known}")


def _newest_window(store: SQLiteStore, job: MonitorJobConfig, version: str) -> tuple[float, float] | None:
    sql = (
        "SELECT window_start, window_end FROM signals WHERE model = ? AND name = 'dataset_drift' AND version = ?"
        " AND window_start IS NOT NULL AND json_extract(labels, '$.monitor') IS ? ORDER BY window_end DESC LIMIT 1"
    )
    if getattr(store, "dialect", "sqlite") == "postgresql":
        from aisre.store.postgres_conn import PgConnection

        sql = sql.replace(
            "json_extract(labels, '$.monitor') IS ?", "(labels::json ->> 'monitor') IS NOT DISTINCT FROM ?"
        )
        conn: Any = PgConnection(store)
    else:
        conn = store._conn()  # noqa: SLF001 - one indexed read of the signals table
    row = conn.execute(sql, (job.model, version, job.name)).fetchone()
    return None if row is None else (float(row[0]), float(row[1]))


def drift_report_html(
    config: AisreConfig,
    store: SQLiteStore,
    model: str,
    version: str,
    since: str | None,
    until: str | None,
    monitor: str | None,
    now: float,
) -> str:
    """The page; BadParameter/UnknownItem (naming the parameter) when the job, reference or window is missing."""
    from aisre.monitor.drift import drift
    from aisre.monitor.jobs.columns import read_window
    from aisre.monitor.jobs.reference import load_reference
    from aisre.monitor.jobs.window import drift_options
    from aisre.monitor.report.html import drift_report_html as render

    job = _job(config, model, version, monitor)
    if since is None and until is None:
        newest = _newest_window(store, job, version)
        if newest is None:
            raise UnknownItem("since", f"monitoring job {job.name} has not checked a window of {model}/{version} yet")
        start, end = newest
    else:
        rng = params.time_range(since, until, None, now, max_span_s=MAX_WINDOW_S)
        start, end = rng.since, rng.until
    try:
        reference = load_reference(job, store)
    except DataError as exc:
        raise BadParameter("monitor", f"the reference of monitoring job {job.name} cannot be read: {exc}") from None
    window = read_window(store, RecordFilter(model, version, start, end))
    if not window.rows:
        raise UnknownItem("since", f"no records of {model}/{version} in [{iso_time(start)}, {iso_time(end)})")
    shared = [c for c in reference.inputs if c in window.inputs]
    if not shared:
        raise BadParameter(
            "monitor", f"no column of {job.name}'s reference appears in the records of {model}/{version}"
        )
    ref = {c: reference.inputs[c] for c in shared}
    cur = {c: window.inputs[c] for c in shared}
    options: dict[str, Any] = {"method": job.method, **drift_options(job, reference, window.rows)}
    result = drift(ref, cur, **options)
    history = [
        (ts, s)
        for ts, s in store.signals(model, "data_drift_score", since=end - HISTORY_WINDOWS_S, version=version)
        if s.labels.get("monitor") in (None, job.name)
    ]
    title = (
        f"Drift: {model} {version}, {iso_time(start)} to {iso_time(end)} ({window.rows} records)"
        f" vs the reference of {job.name}"
    )
    return render(result, ref, cur, title=title, history=history)
