"""Custom-field (and event-property) keys and values, within Drip's rules.

Drip: "Keys should be lowercase, with words separated by underscores. Keys that
begin with `drip_` are reserved" (DripEmail/api-docs `source/includes/js/_identify.md`).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.mapping.types import Problem
from app.mapping.values import Invalid, as_text

# RudderStack's Drip destination drops custom-field values over 1000 characters
# (rudder-transformer src/v0/destinations/drip); Drip documents no limit. We drop
# (never cut) longer strings, and JSON-encoded objects/arrays, and say so.
MAX_VALUE_CHARS = 1000

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_EDGE = re.compile(r"^[^a-z0-9_]+|[^a-z0-9_]+$")
_INNER = re.compile(r"[^a-z0-9_]+")
_RESERVED = "drip_"


def normalise_key(key: str) -> str:
    """`accountType` -> `account_type`, `Shirt Size` -> `shirt_size`, `Größe` -> `gro_e`.

    Accents are dropped (NFKD), camelCase and runs of other characters become
    one `_` (runs at either end are removed), and a leading `drip_` is stripped.
    The result may be empty; callers report that.
    """
    plain = "".join(c for c in unicodedata.normalize("NFKD", key) if not unicodedata.combining(c))
    snake = _CAMEL.sub("_", plain).lower()
    snake = _INNER.sub("_", _EDGE.sub("", snake))
    while snake.startswith(_RESERVED):
        snake = snake[len(_RESERVED) :]
    return snake


def field_value(value: Any) -> Any:
    """Scalars as sent, objects/arrays as compact sorted JSON, None for null."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("not a finite number; dropped")
        return value
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        try:
            text = json.dumps(
                value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
            )
        except (TypeError, ValueError, RecursionError) as exc:
            raise Invalid("cannot be encoded as JSON; dropped") from exc
    else:
        raise Invalid("not a JSON value; dropped")
    if len(text) > MAX_VALUE_CHARS:
        raise Invalid(f"{len(text)} characters, over the {MAX_VALUE_CHARS} limit; dropped")
    return text


@dataclass(frozen=True)
class Entry:
    """One candidate field: where it came from, its original key, its value."""

    path: str
    key: str
    value: Any


def entries_of(data: dict[str, Any], prefix: str, skip: Iterable[str] = ()) -> list[Entry]:
    """The entries of an object, minus the keys in `skip`."""
    skipped = set(skip)
    return [Entry(f"{prefix}.{k}", str(k), v) for k, v in data.items() if k not in skipped]


def collect_fields(entries: Iterable[Entry], problems: list[Problem]) -> dict[str, Any]:
    """Normalised key -> value; nulls dropped, bad values and collisions reported.

    When two keys normalise alike, the one already in normal form wins, else the
    first in sorted order (then the shallower path); the others are reported.
    """
    groups: dict[str, list[tuple[Entry, Any]]] = {}
    for entry in entries:
        key = normalise_key(entry.key)
        if not key:
            problems.append(Problem(entry.path, "key has no characters Drip accepts; dropped"))
            continue
        try:
            value = field_value(entry.value)
        except Invalid as exc:
            problems.append(Problem(entry.path, str(exc)))
            continue
        if value is not None:
            groups.setdefault(key, []).append((entry, value))
    fields: dict[str, Any] = {}
    for key, candidates in groups.items():
        ranked = sorted(candidates, key=lambda c: (c[0].key != key, c[0].key, c[0].path.count(".")))
        winner, value = ranked[0]
        fields[key] = value
        for loser, _ in ranked[1:]:
            reason = f"same Drip key '{key}' as {winner.path}; dropped"
            problems.append(Problem(loser.path, reason))
    return fields


def tag_list(value: Any, path: str, problems: list[Problem]) -> list[str]:
    """Tags from an array or a comma-separated string: trimmed, no blanks, no repeats."""
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        problems.append(Problem(path, "expected an array or a comma-separated string"))
        return []
    tags: list[str] = []
    for index, item in enumerate(items):
        try:
            tag = as_text(item)
        except Invalid:
            problems.append(Problem(f"{path}[{index}]", "a tag must be a string; dropped"))
            continue
        if tag and tag not in tags:
            tags.append(tag)
    return tags
