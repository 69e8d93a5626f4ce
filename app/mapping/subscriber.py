"""Segment identify traits -> the body of a Drip subscriber (create or update).

Drip's keys: DripEmail/api-docs `source/includes/rest/_subscribers.md`.
`email`, `new_email` and campaigns are decided by `to_drip`, which knows the
person's history; everything else about the record is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.mapping.fields import Entry, collect_fields, entries_of, normalise_key, tag_list
from app.mapping.types import Problem
from app.mapping.values import (
    Coerce,
    Invalid,
    as_bool,
    as_consent,
    as_email,
    as_int,
    as_text,
    choice,
    dig,
    first_usable,
)

STATUSES = ("active", "unsubscribed")
_STATUS = choice(*STATUSES)


@dataclass(frozen=True)
class Field:
    """Drip key <- the first source path with a usable value."""

    target: str
    sources: tuple[str, ...]
    coerce: Coerce = as_text


# First-class Drip subscriber keys, in the order the spec lists them.
FIELDS: tuple[Field, ...] = (
    # user_id <- userId and email/new_email are identity, set by to_drip.
    Field("first_name", ("traits.firstName", "traits.first_name")),
    Field("last_name", ("traits.lastName", "traits.last_name")),
    Field("phone", ("traits.phone",)),
    Field("address1", ("traits.address.street", "traits.address.address1", "traits.address1")),
    Field("address2", ("traits.address.address2", "traits.address2")),
    Field("city", ("traits.address.city", "traits.city")),
    Field("state", ("traits.address.state", "traits.state")),
    Field("zip", ("traits.address.postal_code", "traits.address.postalCode", "traits.zip")),
    Field("country", ("traits.address.country", "traits.country")),
    Field(
        "time_zone", ("traits.time_zone", "traits.timezone", "traits.timeZone", "context.timezone")
    ),
    Field("ip_address", ("traits.ip_address", "context.ip")),
    Field("prospect", ("traits.prospect",), as_bool),
    Field("eu_consent", ("traits.eu_consent",), as_consent),
    Field("eu_consent_message", ("traits.eu_consent_message",)),
    Field("base_lead_score", ("traits.base_lead_score",), as_int),
    Field("lifetime_value", ("traits.lifetime_value",), as_int),  # Drip: cents
    Field("status", ("traits.status",), _STATUS),
    Field("initial_status", ("traits.initial_status",), _STATUS),
    Field("sms_number", ("traits.sms_number",)),
    Field("sms_consent", ("traits.sms_consent",), as_bool),
)
TAGS = ("traits.tags",)
REMOVE_TAGS = ("traits.remove_tags", "traits.removeTags")
NEW_EMAIL = ("traits.new_email", "traits.newEmail")
NESTED_CUSTOM_FIELDS = ("custom_fields", "customFields")  # Drip (Actions) users send these

# Traits that never become custom fields: the sources above, plus identity.
CONSUMED = frozenset(
    {p.split(".")[1] for f in FIELDS for p in f.sources if p.startswith("traits.")}
    | {p.split(".")[1] for p in TAGS + REMOVE_TAGS + NEW_EMAIL}
    | {"email", "name", "id", "userId", "unsubscribed", *NESTED_CUSTOM_FIELDS}
)


def subscriber_fields(
    message: dict[str, Any], audience_tags: bool, problems: list[Problem]
) -> dict[str, Any]:
    """Every subscriber key except `email`/`new_email`; keys without a value are left out."""
    record = first_class(message, problems)
    traits = message.get("traits")
    traits = traits if isinstance(traits, dict) else {}
    record.update(name_parts(traits.get("name"), record, problems))
    tags = {
        "tags": tag_list(dig(message, TAGS[0]), TAGS[0], problems),
        "remove_tags": first_tags(message, REMOVE_TAGS, problems),
    }
    custom = collect_fields(custom_entries(traits), problems)
    audience = audience_trait(message, traits)
    if audience is not None:
        key, member = audience
        custom[key] = member
        if audience_tags:
            add_tag(tags["tags" if member else "remove_tags"], key)
    record.update({k: v for k, v in tags.items() if v})
    if custom:
        record["custom_fields"] = custom
    return record


def first_class(message: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """The `FIELDS` table applied: each key from its first usable source."""
    record: dict[str, Any] = {}
    for field in FIELDS:
        value = first_usable(message, field.sources, field.coerce, problems)
        if value is not None:
            record[field.target] = value
    return record


def name_parts(name: Any, record: dict[str, Any], problems: list[Problem]) -> dict[str, str]:
    """`name` split at its first space fills whichever of first/last name is missing."""
    if name is None or ("first_name" in record and "last_name" in record):
        return {}
    try:
        text = as_text(name)
    except Invalid as exc:
        problems.append(Problem("traits.name", str(exc)))
        return {}
    parts = (text or "").split(None, 1)
    split = dict(zip(("first_name", "last_name"), parts, strict=False))
    return {k: v for k, v in split.items() if k not in record}


def first_tags(
    message: dict[str, Any], paths: tuple[str, ...], problems: list[Problem]
) -> list[str]:
    for path in paths:
        if dig(message, path) is not None:
            return tag_list(dig(message, path), path, problems)
    return []


def add_tag(tags: list[str], tag: str) -> None:
    if tag not in tags:
        tags.append(tag)


def custom_entries(traits: dict[str, Any]) -> list[Entry]:
    """Traits left for custom fields, then the entries of a nested `custom_fields` object."""
    entries = entries_of(traits, "traits", skip=CONSUMED)
    for name in NESTED_CUSTOM_FIELDS:
        nested = traits.get(name)
        if isinstance(nested, dict):
            entries += entries_of(nested, f"traits.{name}")
        elif nested is not None:
            entries.append(Entry(f"traits.{name}", name, nested))
    return entries


def trait_names(message: dict[str, Any]) -> dict[str, str]:
    """Drip custom-field key -> the trait name it came from, where they differ
    (`planType` -> `plan_type`): an Identify built from Drip's webhooks names it back."""
    traits = message.get("traits")
    if message.get("type") != "identify" or not isinstance(traits, dict):
        return {}
    names = {normalise_key(e.key): e.key for e in custom_entries(traits)}
    return {key: name for key, name in names.items() if key and key != name}


def audience_trait(message: dict[str, Any], traits: dict[str, Any]) -> tuple[str, bool] | None:
    """An Engage audience identify: (custom field key, member?) or None.

    Engage names the audience trait in `context.personas.computation_key`;
    computed traits (`computation_class: trait`) are plain custom fields.
    """
    personas = dig(message, "context.personas")
    if not isinstance(personas, dict) or personas.get("computation_class") == "trait":
        return None
    key = personas.get("computation_key")
    if not isinstance(key, str) or traits.get(key) is None or not normalise_key(key):
        return None
    try:
        return normalise_key(key), as_bool(traits[key])
    except Invalid:
        return None


def new_email_trait(message: dict[str, Any], problems: list[Problem]) -> str | None:
    """An explicit `traits.new_email` (Drip's own key), if it is an email address."""
    email: str | None = first_usable(message, NEW_EMAIL, as_email, problems)
    return email
