"""Turning loosely typed Segment values into the shapes Drip documents.

Each `as_*` function returns the value Drip should get, `None` when the value
is blank (so the key is left out), or raises `Invalid` whose message becomes
the reason of a `Problem`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.drip_api import MAX_EMAIL, MAX_INT, is_campaign_id, is_email, parse_time
from app.mapping.types import Problem

Coerce = Callable[[Any], Any]

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class Invalid(ValueError):
    """A value that cannot be sent as given; the message says why."""


def attempt(raw: Any, coerce: Coerce, path: str, problems: list[Problem]) -> Any:
    """`coerce(raw)`; None when `raw` is None, or with a Problem at `path` when unusable."""
    if raw is None:
        return None
    try:
        return coerce(raw)
    except Invalid as exc:
        problems.append(Problem(path, str(exc)))
        return None


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (`traits.address.city`), None if any step is missing."""
    for step in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(step)
    return data


def first_usable(
    data: Any, paths: Iterable[str], coerce: Coerce, problems: list[Problem], prefix: str = ""
) -> Any:
    """The coerced value at the first of `paths` that has a usable one, else None.

    Values that cannot be used are reported as Problems at `prefix + path`.
    """
    for path in paths:
        raw = dig(data, path)
        if raw is None:
            continue
        try:
            value = coerce(raw)
        except Invalid as exc:
            problems.append(Problem(prefix + path, str(exc)))
            continue
        if value is not None:
            return value
    return None


def as_email(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("expected an email address string")
    if len(value.strip()) > MAX_EMAIL:
        raise Invalid(f"over {MAX_EMAIL} characters, longer than any email address")
    if not is_email(value):
        raise Invalid("not an email address")
    return value.strip()


def as_campaign_id(value: Any) -> str | None:
    """A Drip campaign id: digits only (it goes into the URL of the call)."""
    text = as_id(value)
    if text is not None and not is_campaign_id(text):
        raise Invalid("not a Drip campaign id (digits only)")
    return text


def as_text(value: Any) -> str | None:
    """A trimmed string; numbers become their decimal text; blank means absent."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid("expected a string")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("expected a string")
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip() or None


def as_id(value: Any) -> str | None:
    """An identifier, verbatim (ids are exact); integers become text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid("expected a string id")
    text = str(value)
    return text if text.strip() else None


def as_bool(value: Any) -> bool:
    """`true`/`false`, also as the strings Engage journeys send."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Invalid("expected true or false")


def as_int(value: Any) -> int:
    """A whole number in Drip's 32-bit range (`30`, `30.0` and `"30"` all give 30)."""
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,10}\s*", value):
        value = int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("expected a whole number")
    if not -MAX_INT < value < MAX_INT:
        raise Invalid(f"outside Drip's range (below {MAX_INT})")
    return value


def choice(*allowed: str) -> Coerce:
    """A coercer accepting one of `allowed`, case-insensitively."""

    def coerce(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in allowed:
            return value.strip().lower()
        raise Invalid("expected one of " + ", ".join(allowed))

    return coerce


def as_consent(value: Any) -> str:
    """Drip's `eu_consent`: `granted`/`denied`; true/false are accepted for them."""
    if isinstance(value, bool):
        return "granted" if value else "denied"
    return str(choice("granted", "denied")(value))


def as_decimal(value: Any) -> Decimal:
    """A finite decimal from a number or a numeric string (`"9.99"`, `"$9.99"`)."""
    if isinstance(value, bool):
        raise Invalid("expected a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip().removeprefix("$").strip()
    else:
        raise Invalid("expected a number")
    if len(text) > 100 or not _NUMBER.fullmatch(text):
        raise Invalid("expected a number")
    return Decimal(text)


def as_amount(value: Any) -> int | float:
    """A money amount in currency units, as sent (numeric strings become numbers)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    amount = float(as_decimal(value))
    if not math.isfinite(amount):
        raise Invalid("expected a number")
    return amount


def as_cents(value: Any) -> int:
    """Dollars -> integer cents (half up), within Drip's conversion range."""
    try:
        cents = (as_decimal(value) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except ArithmeticError as exc:
        raise Invalid(f"too large for a Drip conversion value (below {MAX_INT} cents)") from exc
    if cents < 0:
        raise Invalid("negative; a Drip conversion value must be 0 or more")
    if cents >= MAX_INT:
        raise Invalid(f"too large for a Drip conversion value (below {MAX_INT} cents)")
    return int(cents)


def as_timestamp(value: Any) -> str:
    """ISO-8601 -> UTC with seconds precision and a Z (`2015-02-23T22:28:55Z`)."""
    if not isinstance(value, str):
        raise Invalid("expected an ISO-8601 timestamp string")
    try:
        moment = parse_time(value.strip())
    except ValueError as exc:
        raise Invalid("not an ISO-8601 timestamp") from exc
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
