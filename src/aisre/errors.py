"""Exception classes: one per kind of failure, each message says what was wrong and what was expected."""

from __future__ import annotations


class AisreError(Exception):
    """Base class of every error aisre raises on purpose."""


class ConfigError(AisreError):
    """The configuration is invalid; `problems` lists each bad key path and why."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {source}:\n{lines}")


class StoreError(AisreError):
    """The store cannot be opened, read or written."""


class UnknownRecordError(StoreError, KeyError):
    """A label (or lookup) names inference record ids the store does not have."""

    def __init__(self, record_ids: list[str]) -> None:
        self.record_ids = record_ids
        shown = ", ".join(repr(i) for i in record_ids[:5])
        more = f" and {len(record_ids) - 5} more" if len(record_ids) > 5 else ""
        super().__init__(
            f"no inference record with id {shown}{more}; a label must name the id of a "
            "recorded inference (the `id` returned by Monitor.record)"
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class QueueFullError(AisreError):
    """The record queue is full and the overflow policy is `raise` (or `block` timed out)."""


class WriterClosedError(AisreError):
    """A record was submitted after the writer was closed."""


class InvalidRecordError(AisreError, ValueError):
    """A call to record an inference had bad arguments; the message names each field."""
