"""Drift methods by name, and `get_method` to build one for a threshold and compat mode."""

from __future__ import annotations

from aisre.errors import MethodError
from aisre.monitor.drift.base import Method
from aisre.monitor.drift.compat import EVIDENTLY_THRESHOLDS, MODES
from aisre.monitor.drift.histogram import PSI, Hellinger, JensenShannon, LInfinity
from aisre.monitor.drift.stattests import KS, AndersonDarling, ChiSquare, CramerVonMises, ZTest
from aisre.monitor.drift.wasserstein import Wasserstein

METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (KS, ChiSquare, ZTest, PSI, JensenShannon, Wasserstein, Hellinger, CramerVonMises, AndersonDarling)
}
#: METHODS (the nine with an Evidently counterpart, the set `method="auto"` chooses from) plus the
#: methods only NannyML has: `linfinity`. Every name `drift(method=...)` and `get_method` accept.
ALL_METHODS: dict[str, type[Method]] = {**METHODS, LInfinity.name: LInfinity}


def get_method(name: str, threshold: float | None = None, compat: str | None = None) -> Method:
    """A new, unfitted method; `threshold=None` takes the method's default (Evidently's under
    compat="evidently")."""
    cls = ALL_METHODS.get(name)
    if cls is None:
        raise MethodError(f"method: unknown drift method {name!r}; expected one of {sorted(ALL_METHODS)} or 'auto'")
    if compat is not None and compat not in MODES:
        raise MethodError(f"compat: unknown compat mode {compat!r}; expected one of {list(MODES)} or None")
    modes = getattr(cls, "compat_modes", (None,))
    if compat not in modes:
        supported = [m for m in modes if m is not None]
        raise MethodError(
            f"compat: method {name!r} has no compat={compat!r} mode (it supports {supported or 'none'}); "
            "use compat=None for aisre's own definition"
        )
    if threshold is not None and not (threshold == threshold and threshold >= 0):
        raise MethodError(f"threshold: expected a number >= 0 for method {name!r}, got {threshold!r}")
    if compat == "evidently" and threshold is None:
        threshold = EVIDENTLY_THRESHOLDS.get(name)
    return cls(threshold=threshold, compat=compat)  # type: ignore[call-arg]
