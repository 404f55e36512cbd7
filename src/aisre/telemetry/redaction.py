"""Input redaction: configured fields are dropped or replaced by a keyed hash before any write.

The hash is HMAC-SHA256 under a secret key, so a hashed value can still be grouped and
joined (same input, same hash) but not reversed by hashing guesses without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Any

from aisre.config import RedactionConfig, checks
from aisre.errors import ConfigError


class Redactor:
    def __init__(self, drop: Sequence[str] = (), hash: Sequence[str] = (), key: bytes | None = None):
        if hash and not key:
            raise ConfigError(["redaction.hash: hashing fields needs a secret key (bytes)"])
        self._drop = [tuple(name.split(".")) for name in drop]
        self._hash = [tuple(name.split(".")) for name in hash]
        self._key = key or b""

    @classmethod
    def from_config(cls, cfg: RedactionConfig) -> Redactor | None:
        if not cfg.drop and not cfg.hash:
            return None
        checks.require(checks.redaction_problems(cfg))
        return cls(cfg.drop, cfg.hash, os.environ.get(cfg.hash_key_env, "").encode())

    def hash_value(self, value: Any) -> str:
        digest = hmac.new(self._key, repr(value).encode(), hashlib.sha256).hexdigest()
        return f"hmac-sha256:{digest[:32]}"

    def apply(self, inputs: Any) -> Any:
        """A redacted copy of `inputs` (a mapping, or a list of mappings); others unchanged."""
        if isinstance(inputs, dict):
            out = dict(inputs)
            for path in self._drop:
                _edit(out, path, None)
            for path in self._hash:
                _edit(out, path, self.hash_value)
            return out
        if isinstance(inputs, list):
            return [self.apply(item) if isinstance(item, dict) else item for item in inputs]
        return inputs


def _edit(mapping: dict, path: tuple[str, ...], transform: Any) -> None:
    head, rest = path[0], path[1:]
    if head not in mapping:
        return
    if rest:
        child = mapping[head]
        if isinstance(child, dict):
            child = mapping[head] = dict(child)  # copy on write: never touch the caller's data
            _edit(child, rest, transform)
        return
    if transform is None:
        del mapping[head]
    else:
        mapping[head] = transform(mapping[head])
