"""Fallback rule functions: the simpler, predictable logic an open AI circuit breaker answers with.

Named in config by dotted path, ``package.module:function`` (as entry points are), imported and
checked at start-up (and by `aisre check-config`), never at the first failure. The function gets
the request already decoded and returns the answer the pipeline encodes in the model's protocol:

- Open Inference Protocol (classical models): ``rule(rows: list[dict[str, Any]]) -> list[Any]``,
  one prediction per input row (the rows as the gateway records them: column -> value).
- OpenAI chat: ``rule(messages: list[dict[str, Any]]) -> str``, the assistant's reply.

A rule must be fast and pure; it runs in the gateway's event loop.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from aisre.errors import InvalidParameterError


class RuleLoadError(InvalidParameterError):
    """A rule that cannot serve; callers turn it into a config problem at the rule's key path."""


def load_rule(dotted: str) -> Callable[[Any], Any]:
    """Import ``package.module:function`` and check it takes one argument.

    RuleLoadError (a ValueError) naming what failed: the module's import (with its error), a
    missing attribute, something not callable, or a signature that cannot take one argument.
    """
    module_name, _, attr = dotted.partition(":")
    if not module_name or not attr:
        raise RuleLoadError(f"expected package.module:function, got {dotted!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is a config problem
        raise RuleLoadError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise RuleLoadError(f"module {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise RuleLoadError(f"{dotted} is a {type(fn).__name__}, not a function")
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        raise RuleLoadError(f"{dotted} must take one argument (the decoded request)") from None
    except ValueError:  # a builtin without a signature: accept it
        pass
    return fn
