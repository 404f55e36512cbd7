"""Promotion hooks for the registry: the SLO freeze, the offline-evaluation gate, and the registry as aisre.yaml
configures them (what the CLI and the admin API use). Kept apart from `registry` so the rules there read alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from aisre.respond.registry import Registry
    from aisre.store.postgres import PostgresStore

__all__ = ["FrozenBy", "Gate", "configured_registry", "evaluation_gate", "evaluation_summary", "slo_freeze"]

FrozenBy = Callable[[str, str], Sequence[str]]
"""(model, version) -> names of the SLOs that freeze promotions of it right now (empty: not frozen)."""
Gate = Callable[[str, str, str], str | None]
"""(model, version, target status) -> why the promotion is refused, or None to let it pass."""


def slo_freeze(slos: Sequence[Any], store: SQLiteStore, clock: Clock = SYSTEM_CLOCK) -> FrozenBy:
    """A `frozen_by` hook judging the model's SLOs (from the config) at the time of the promotion, with
    `aisre.slo.promotions_frozen`. An SLO that cannot be judged yet (no data) freezes nothing."""

    def frozen_by(model: str, version: str) -> list[str]:
        from aisre.slo.evaluate import evaluate_one, promotions_frozen

        reports = [evaluate_one(s, store, clock.now()) for s in slos if s.model == model]
        return promotions_frozen(reports, model, version)

    return frozen_by


def evaluation_gate(store: Any) -> Gate:
    """A `gate` hook: a version needs a passed offline evaluation (`aisre eval`) before shadow, canary or stable.
    Reads `aisre.respond.evaluation.latest_evaluation(store, model, version)`."""

    def gate(model: str, version: str, to: str) -> str | None:
        try:
            from aisre.respond.evaluation import latest_evaluation  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:
            return f"the gate is configured but the evaluation results cannot be read ({exc})"
        result = latest_evaluation(store, model, version)
        if result is None:
            return (
                f"{model} {version} has no offline evaluation; run `aisre eval {model} {version} --data FILE "
                "--label COLUMN` first"
            )
        if not result.passed:
            return f"{model} {version} failed its latest offline evaluation (see `aisre eval`)"
        return None

    return gate


def configured_registry(config: Any, store: SQLiteStore | PostgresStore, clock: Clock = SYSTEM_CLOCK) -> Registry:
    """The registry as aisre.yaml configures it (what the CLI and the admin API use): promotions frozen by the
    config's SLOs and by playbooks' `freeze_promotions` (until an `unfreeze_promotions`), and the
    offline-evaluation gate of `evaluation.<model>.required_for` (`aisre.respond.evaluation.config_gate`)
    when the config has an `evaluation` section."""
    slos = list(getattr(config, "slos", []) or [])
    from aisre.respond.playbooks import playbook_freeze
    from aisre.respond.registry import Registry  # registry imports this module's hook types

    # slo_freeze reads SLO buckets, typed for SQLite (evaluate_one); a PostgreSQL store with `slos` is refused at
    # start-up by aisre.store.postgres.check_config until those readers are ported
    by_slos = slo_freeze(slos, cast(SQLiteStore, store), clock) if slos else None
    by_playbooks = playbook_freeze(store, clock=clock)

    def frozen_by(model: str, version: str) -> list[str]:
        return [*(by_slos(model, version) if by_slos is not None else []), *by_playbooks(model, version)]

    gate = None
    if getattr(config, "evaluation", None):
        from aisre.respond.evaluation import config_gate

        gate = config_gate(config, store)
    return Registry(store, clock=clock, frozen_by=frozen_by, gate=gate)


def evaluation_summary(store: SQLiteStore | PostgresStore, model: str, version: str) -> dict[str, Any] | None:
    """The version's newest offline evaluation in brief (passed, when, which checks failed), or None when it
    was never evaluated: what `aisre models show` and `GET /admin/models/{model}` show beside the status."""
    from aisre.respond.evaluation import latest_evaluation

    result = latest_evaluation(store, model, version)
    if result is None:
        return None
    return {"passed": result.passed, "ts": result.ts, "seq": result.seq, "failed": [c.name for c in result.failed]}
