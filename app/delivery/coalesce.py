"""Merging one person's waiting subscriber updates into one Drip record.

Drip's subscriber upsert is itself a merge (DripEmail/api-docs `rest/_subscribers.md`):
fields overwrite, custom fields merge by key, `tags` are applied and `remove_tags`
removed, `new_email` renames, `initial_status` only counts when the call creates the
person. So several upserts of one person, in order, can go as one record with the
same end state in Drip. `merge` builds that record; records it cannot merge (a later
one addressed to another email) stay apart, in order.
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

# Keys merged by their own rule below; every other key is a field: the later value wins.
_RULED = frozenset({"email", "new_email", "custom_fields", "tags", "remove_tags", "initial_status"})


def current_email(record: Record) -> str:
    """The address Drip knows the person by once `record` is applied, lowercased."""
    return str(record.get("new_email") or record.get("email") or "").strip().lower()


def mergeable(merged: Record, later: Record) -> bool:
    """True when `later` addresses the person `merged` leaves behind (the same email)."""
    return str(later.get("email") or "").strip().lower() == current_email(merged)


def merge(records: list[Record]) -> list[tuple[Record, int]]:
    """`records` (one person's upserts, in order) as few records as keep their effect:
    each merged record with how many of `records` it stands for, in order."""
    out: list[tuple[Record, int]] = []
    for record in records:
        if out and mergeable(out[-1][0], record):
            merged, count = out[-1]
            out[-1] = (merge_two(merged, record), count + 1)
        else:
            out.append((dict(record), 1))
    return out


def merge_two(first: Record, second: Record) -> Record:
    """One record whose effect equals applying `first` then `second` (same person)."""
    out = {k: v for k, v in first.items() if k not in _RULED}
    out.update((k, v) for k, v in second.items() if k not in _RULED)
    out["email"] = first["email"]
    renamed = second.get("new_email") or first.get("new_email")
    if renamed and str(renamed).strip().lower() != str(first["email"]).strip().lower():
        out["new_email"] = renamed
    if "initial_status" in first:  # only the first call can create the person
        out["initial_status"] = first["initial_status"]
    fields = {**(first.get("custom_fields") or {}), **(second.get("custom_fields") or {})}
    if fields:
        out["custom_fields"] = fields
    add, remove = merged_tags(first, second)
    if add:
        out["tags"] = add
    if remove:
        out["remove_tags"] = remove
    return out


def merged_tags(first: Record, second: Record) -> tuple[list[str], list[str]]:
    """(tags, remove_tags) doing what `first`'s then `second`'s do.

    A tag ends applied if `second` applies it, or `first` applies it and `second` does
    not remove it; it ends removed if `second` removes it, or `first` removes it and
    `second` does not apply it again. Within one record a removal wins, as in Drip.
    """
    add1, remove1 = _tags(first, "tags"), _tags(first, "remove_tags")
    add2, remove2 = _tags(second, "tags"), _tags(second, "remove_tags")
    removed = remove2 + [t for t in remove1 if t not in add2]
    add = [t for t in add1 + add2 if t not in remove1 or t in add2]
    add = [t for t in add if t not in remove2]
    return _unique(add), _unique(removed)


def _tags(record: Record, key: str) -> list[str]:
    value = record.get(key)
    if value is None:
        return []
    return [str(t) for t in value] if isinstance(value, list) else [str(value)]


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))
