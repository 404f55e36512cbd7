"""Per-response LLM checks: empty, truncated, refusal, invalid JSON and schema violations, as flags.

The refusal patterns and the truncation rule are defined in docs/statistics-importance-llm.md;
schemas are checked by the `jsonschema` package (the `aisre[llm]` extra, see `schema.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aisre.errors import InvalidParameterError
from aisre.monitor.llm.evaluators import EvaluationOutcome
from aisre.monitor.llm.schema import compile_schema

DEFAULT_REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI(?:['’]m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:['’]|no)?t|cannot|won['’]t|will not|"
    r"am unable|['’]m unable|am not able)\b",
    r"\bI can(?:['’]|no)?t (?:help|assist)(?: you)? with\b",
    r"\bI cannot (?:help|assist|provide|comply|fulfil|fulfill|do that)\b",
    r"\bI(?:['’]m| am) (?:not able|unable) to (?:help|assist|provide|comply|fulfil|fulfill)\b",
    r"\bI (?:won['’]t|will not) be able to (?:help|assist|provide)\b",
    r"\bI must (?:decline|refuse)\b",
    r"\bI(?:['’]m| am) not (?:allowed|permitted) to\b",
    r"\bas an AI(?: language model| assistant| model)?\b",
)
"""Case-insensitive regexes searched in the first `refusal_scan_chars` characters."""
TRUNCATION_FINISH_REASONS = frozenset({"length", "max_tokens", "max_output_tokens"})
"""Finish reasons (lower-cased) meaning the token limit cut the response: OpenAI `length`,
Anthropic `max_tokens`, Gemini `MAX_TOKENS`, OpenAI Responses `max_output_tokens`."""


@dataclass(slots=True)
class ResponseFlags:
    """Quality flags of one response. `truncated` is None when neither a finish reason nor a
    token count and limit were known; `json_valid`/`schema_errors` are None when not checked."""

    index: int
    record_id: str | None
    empty: bool
    truncated: bool | None
    refusal: bool
    chars: int
    tokens: int | None = None
    finish_reason: str | None = None
    refusal_pattern: str | None = None
    response_id: str | None = None
    json_valid: bool | None = None
    schema_errors: list[str] | None = None
    evaluations: list[EvaluationOutcome] = field(default_factory=list)

    @property
    def schema_valid(self) -> bool | None:
        return None if self.schema_errors is None else not self.schema_errors

    def to_dict(self) -> dict[str, Any]:
        names = (
            "index",
            "record_id",
            "empty",
            "truncated",
            "refusal",
            "chars",
            "tokens",
            "finish_reason",
            "refusal_pattern",
            "response_id",
            "json_valid",
            "schema_errors",
        )
        out = {k: getattr(self, k) for k in names}
        out["evaluations"] = [e.event(self.response_id) for e in self.evaluations]
        return out


class ResponseChecker:
    """The per-response rules, compiled once: empty, truncated, refusal, JSON, schema."""

    def __init__(
        self,
        *,
        refusal_patterns: Sequence[str] = DEFAULT_REFUSAL_PATTERNS,
        refusal_scan_chars: int | None = 500,
        max_tokens: int | None = None,
        expect_json: bool = False,
        schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.refusal_patterns = []
        for i, pattern in enumerate(refusal_patterns):
            try:
                self.refusal_patterns.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise InvalidParameterError(f"refusal_patterns[{i}]: invalid regex {pattern!r}: {exc}") from None
        if refusal_scan_chars is not None and refusal_scan_chars < 1:
            raise InvalidParameterError(
                f"refusal_scan_chars: expected an integer >= 1 or None, got {refusal_scan_chars!r}"
            )
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise InvalidParameterError(f"max_tokens: expected an integer >= 1 or None, got {max_tokens!r}")
        self._schema_errors = None if schema is None else compile_schema(schema)
        self.refusal_scan_chars = refusal_scan_chars
        self.max_tokens = max_tokens
        self.schema = schema
        self.expect_json = expect_json or schema is not None

    def check(
        self,
        text: str | None,
        *,
        index: int = 0,
        record_id: str | None = None,
        tokens: int | None = None,
        finish_reason: str | None = None,
        max_tokens: int | None = None,
    ) -> ResponseFlags:
        """Flags for one response; `max_tokens` overrides the checker's limit for this one."""
        text = text or ""
        limit = max_tokens if max_tokens is not None else self.max_tokens
        truncated: bool | None  # None: unknown (no finish reason, no token count or no limit)
        if finish_reason is not None:  # the server's own word wins over counting tokens
            truncated = finish_reason.strip().lower() in TRUNCATION_FINISH_REASONS
        else:
            truncated = None if tokens is None or limit is None else tokens >= limit
        head = text if self.refusal_scan_chars is None else text[: self.refusal_scan_chars]
        matched = next((p.pattern for p in self.refusal_patterns if p.search(head)), None)
        flags = ResponseFlags(
            index,
            record_id,
            not text.strip(),
            truncated,
            matched is not None,
            len(text),
            tokens,
            finish_reason,
            matched,
        )
        if self.expect_json:
            try:
                value = json.loads(text, parse_constant=_reject_constant)
                flags.json_valid = True
            except ValueError:
                flags.json_valid = False
            if self._schema_errors is not None:
                flags.schema_errors = self._schema_errors(value) if flags.json_valid else ["/: not valid JSON"]
        return flags


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")  # Python accepts NaN/Infinity; RFC 8259 does not
