"""A key's expiry as people write it, parsed one way for the CLI (`--expires`) and the admin API (`expires`).

One parser for both, so a value that works in `aisre keys create` works in `POST /admin/keys` and the
other way round; the error names the field and lists every accepted form.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from aisre.store.codec import iso_time
from aisre.store.keys import InvalidKeyOptionError

EXPIRY_FORMS = (
    "a duration from now like 30d, 12h, 90m, 2w, 3600s, "
    "a future ISO 8601 date or date-time like 2027-01-31 or 2027-01-31T18:00Z (UTC unless it has a zone), "
    "or Unix epoch seconds like 1801526400"
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_LAST_EPOCH_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last time datetime can show


def parse_expiry(value: object, now: float, field: str = "expires") -> float:
    """`value` (a duration from `now`, an ISO date/time, or epoch seconds as a number or digits) -> epoch
    seconds after `now`. Raises InvalidKeyOptionError naming `field` and the accepted forms."""
    at = _parse(value, now)
    if at is None or not math.isfinite(at) or at > _LAST_EPOCH_S:
        raise InvalidKeyOptionError(field, EXPIRY_FORMS, value)
    if at <= now:
        shown = iso_time(at) if at >= 0 else "before 1970"
        raise InvalidKeyOptionError(
            field, f"a time in the future (now is {iso_time(now)}; {value!r} is {shown})", value
        )
    return at


def _parse(value: object, now: float) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if match := _DURATION.fullmatch(text):
        return now + float(match[1]) * _UNIT_S[match[2]]
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return float(text) if _NUMBER.fullmatch(text) else None
    return (stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)).timestamp()
