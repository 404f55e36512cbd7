"""Checked CLI options: time windows, counts, input and output files. Every error names its option and value.

Checked before any work starts where possible (an output path that cannot be written should
not cost a ten-minute drift run first), and caught again at the write, where the disk decides.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from aisre.cli.common import fail, parse_time

#: The largest count SQLite (and so the store) takes: a signed 64-bit integer.
MAX_COUNT = 2**63 - 1


def window(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """--since/--until as epoch seconds; `until` not after `since` is a mistake, not an empty window."""
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start is not None and end is not None and not end > start:
        raise fail(
            f"--until: expected a time after --since, got --since {since!r} ({_iso(start)}) "
            f"and --until {until!r} ({_iso(end)})"
        )
    return start, end


def count(n: int, option: str) -> int:
    if not 0 <= n <= MAX_COUNT:
        raise fail(f"{option}: expected a count >= 0 and <= {MAX_COUNT} (a signed 64-bit integer), got {n}")
    return n


def input_file(path: str, option: str) -> Path:
    """An existing, readable regular file."""
    p = Path(path)
    if not p.exists():
        raise fail(f"{option}: no such file {path}")
    if p.is_dir():
        raise fail(f"{option}: {path} is a directory, expected a file")
    try:
        with p.open("rb"):
            pass
    except OSError as exc:
        raise fail(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    return p


def output_file(path: str, option: str) -> Path:
    """A path a file can be written to: not a directory, in a directory that exists and is writable."""
    p = Path(path)
    if p.is_dir():
        raise fail(f"{option}: {path} is a directory, expected a file path")
    parent = p.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise fail(f"{option}: cannot write {path}: directory {parent} {what}")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise fail(f"{option}: cannot write {path}: permission denied")
    return p


def write_text(path: str, text: str, option: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{option}: cannot write {path}: {exc.strerror or exc}") from None


def renamed(message: str, options: dict[str, str]) -> str:
    """A library message that starts with its parameter ("bins: ...") retold with the CLI option ("--bins: ...")."""
    head, sep, rest = message.partition(":")
    return f"{options[head]}{sep}{rest}" if sep and head in options else message


def _iso(ts: float) -> str:
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{ts:g} s since 1970"
