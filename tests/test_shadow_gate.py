"""A passing shadow is a promotion criterion: `evaluation.<model>.shadow_required_for` gates canary and stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisre.clock import ManualClock
from aisre.config.loader import config_from_dict
from aisre.records import Signal
from aisre.respond.promotion import configured_registry
from aisre.store import SQLiteStore

T0 = 1_767_225_600.0


def test_canary_needs_the_newest_shadow_evaluation_to_have_passed(tmp_path: Path) -> None:
    db = tmp_path / "aisre.db"
    config = config_from_dict(
        {"store": f"sqlite:///{db}", "evaluation": {"fraud": {"required_for": [], "shadow_required_for": ["canary"]}}}
    )
    store = SQLiteStore(db)
    registry = configured_registry(config, store, ManualClock(T0))
    registry.register("fraud", "v2", actor="test")
    registry.promote("fraud", "v2", "shadow", actor="test")  # shadow itself needs nothing
    with pytest.raises(Exception, match="needs a passing shadow evaluation before canary"):
        registry.promote("fraud", "v2", "canary", actor="test")
    store.write_signals([Signal("fraud", "v2", "shadow_passed", 0.0, 1.0, True, {})], T0)
    with pytest.raises(Exception, match="failed its latest shadow evaluation"):
        registry.promote("fraud", "v2", "canary", actor="test")
    store.write_signals([Signal("fraud", "v2", "shadow_passed", 1.0, 1.0, False, {})], T0 + 60)
    assert registry.promote("fraud", "v2", "canary", actor="test").status == "canary"
