"""A reference, profiled once and saved, so monitoring never needs the raw reference again.

`Reference.fit(data)` profiles every column (bins or vocabulary chosen from the reference)
and keeps a seeded random sample of raw values per column (default 10,000) for the exact
tests that need raw values (KS, Wasserstein, Cramér–von Mises). `save`/`load` use one
strict JSON file (infinities as "inf"/"-inf" strings), typically tens of KB per column
whatever the reference size.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisre.errors import InvalidParameterError
from aisre.monitor.profiles.profile import (
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    check_bins,
    fit_profile,
)
from aisre.monitor.tabular.frame import DataError, is_numeric, to_columns

FORMAT = "aisre.reference/1"


@dataclass
class TableProfile:
    """Profiles of every column of one window; merges column by column."""

    columns: dict[str, ColumnProfile]
    rows: int = 0

    def update(self, data: Any) -> TableProfile:
        columns = to_columns(data)
        missing = [c for c in self.columns if c not in columns]
        if missing:
            raise DataError(f"columns missing from the current data: {missing}")
        n = len(next(iter(columns.values()))) if columns else 0
        for name, profile in self.columns.items():
            values = columns[name]
            if isinstance(profile, NumericProfile) and not is_numeric(values):
                raise DataError(
                    f"column {name!r}: numeric in the reference, but the current values are text "
                    f"(e.g. {next((v for v in values if v is not None), None)!r})"
                )
            if isinstance(profile, CategoricalProfile) and is_numeric(values):
                values = np.array([None if np.isnan(v) else _category_text(v) for v in values], dtype=object)
            profile.update(values)
        self.rows += n
        return self

    def merge(self, other: TableProfile) -> TableProfile:
        if set(self.columns) != set(other.columns):
            differ = sorted(set(self.columns) ^ set(other.columns))
            raise DataError(f"cannot merge profiles of different columns: {differ}")
        merged = {name: p.merge(other.columns[name]) for name, p in self.columns.items()}  # type: ignore[arg-type]
        return TableProfile(merged, self.rows + other.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": {n: p.to_dict() for n, p in self.columns.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableProfile:
        kinds: dict[str, type[NumericProfile] | type[CategoricalProfile]] = {
            "numeric": NumericProfile,
            "categorical": CategoricalProfile,
        }
        columns: dict[str, ColumnProfile] = {name: kinds[p["kind"]].from_dict(p) for name, p in d["columns"].items()}
        return cls(columns, d["rows"])


@dataclass
class Reference:
    profile: TableProfile
    samples: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        data: Any,
        *,
        bins: int | str = "doane",
        category_cap: int = 50,
        sample_size: int = 10_000,
        quantiles: bool = False,
        seed: int = 0,
    ) -> Reference:
        check_bins(bins)
        if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
            raise InvalidParameterError(
                f"sample_size: expected a whole number >= 1 (raw values kept per column), got {sample_size!r}"
            )
        columns = to_columns(data)
        if not columns:
            raise DataError("the reference has no columns")
        n = len(next(iter(columns.values())))
        if n == 0:
            raise DataError("the reference has no rows")
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
        profiles = {name: fit_profile(v, bins, category_cap, quantiles) for name, v in columns.items()}
        samples = {name: v[pick] for name, v in columns.items()}
        settings = {
            "bins": bins,
            "category_cap": category_cap,
            "sample_size": sample_size,
            "seed": seed,
            "rows": n,
            "created": time.time(),
        }
        return cls(TableProfile(profiles, n), samples, settings)

    @property
    def column_names(self) -> list[str]:
        return list(self.profile.columns)

    def empty_profile(self) -> TableProfile:
        """A fresh profile with the reference's bins and vocabularies, for a current window."""
        return TableProfile({name: type(p).empty_like(p) for name, p in self.profile.columns.items()})  # type: ignore[arg-type]

    def profile_of(self, data: Any) -> TableProfile:
        return self.empty_profile().update(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        doc = {
            "format": FORMAT,
            "settings": self.settings,
            "profile": self.profile.to_dict(),
            "samples": {n: _sample_to_json(v) for n, v in self.samples.items()},
        }
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False)  # strict JSON: +-inf are strings
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Reference:
        """Read a saved reference; anything else (not JSON, not ours, damaged) is a `DataError` naming the file."""
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except UnicodeDecodeError:
            raise DataError(f"{path} is not an aisre reference: not UTF-8 JSON (a Parquet or binary file?)") from None
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            raise DataError(f"cannot read reference {path}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = f"format {doc.get('format')!r}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
            raise DataError(f"{path} is not an aisre reference ({found}, expected an object with format {FORMAT!r})")
        try:
            samples = {n: _sample_from_json(v) for n, v in doc["samples"].items()}
            reference = cls(TableProfile.from_dict(doc["profile"]), samples, dict(doc["settings"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(
                f"{path} is a damaged aisre reference ({type(exc).__name__}: {exc}); "
                "profile the data again (Reference.fit(...).save, or aisre monitor reference)"
            ) from None
        if set(reference.samples) != set(reference.profile.columns):
            raise DataError(f"{path} is a damaged aisre reference: its samples and profiles name different columns")
        return reference


def _category_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _sample_to_json(values: np.ndarray) -> dict[str, Any]:
    """Missing values as null, +-inf as "inf"/"-inf" (bare Infinity is not JSON)."""
    if is_numeric(values):
        return {"numeric": [None if math.isnan(v) else v if math.isfinite(v) else str(v) for v in values.tolist()]}
    return {"categorical": values.tolist()}


def _sample_from_json(d: dict[str, Any]) -> np.ndarray:
    if "numeric" in d:
        return np.array([np.nan if v is None else float(v) for v in d["numeric"]], dtype=np.float64)
    return np.array(d["categorical"], dtype=object)
