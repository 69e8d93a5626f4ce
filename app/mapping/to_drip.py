"""Segment identify/track/alias -> Drip calls: a pure mapping (docs/mapping.md).

`map_message(message, known, options)` never raises on a JSON object: fields it
cannot use are listed in `Outcome.problems` and the rest is still mapped.
docs/mapping.md has the field table and the Drip documentation behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.drip_api import is_email
from app.mapping.consent import unsubscribe_call, unsubscribes
from app.mapping.device import SENT_BY_PLUGIN, handed_to_tag
from app.mapping.events import AUDIENCE_EVENTS, audience_fields, event_properties, occurred_at
from app.mapping.orders import order_action, order_record
from app.mapping.subscriber import new_email_trait, subscriber_fields
from app.mapping.types import DripCall, Options, Outcome, Problem
from app.mapping.values import (
    as_bool,
    as_campaign_id,
    as_email,
    as_id,
    attempt,
    dig,
    first_usable,
)
from app.segment_api import is_enabled

DESTINATION = "Drip"  # the key in Segment's `integrations` object (case-sensitive)
OBJECTS = {
    "identify": ("context", "context.traits", "context.personas", "traits", "traits.address"),
    "track": ("context", "context.traits", "properties"),
}

Handler = Callable[[dict[str, Any], Mapping[str, str], Options, Outcome], None]
# Why a browser message's field is not used (BROWSER_WRITE_KEY is public).
BROWSER_ONLY = "ignored: BROWSER_WRITE_KEY is public, so a page may not "


@dataclass(frozen=True)
class Person:
    """Who a message is about: the email found and the ids it carries."""

    email: str
    from_message: bool  # False when the email came from `known`
    user_id: str | None
    anonymous_id: str | None

    def learned(self, email: str, browser: bool = False) -> dict[str, str]:
        """Ids to remember `email` for; from a page (BROWSER_WRITE_KEY) only the
        anonymousId, which a stranger cannot guess, never a userId, which they might."""
        ids = (self.anonymous_id,) if browser else (self.user_id, self.anonymous_id)
        return {i: email for i in ids if i}


def map_message(message: dict[str, Any], known: Mapping[str, str], options: Options) -> Outcome:
    """The Drip calls for one Segment message, or the reason there are none."""
    outcome = Outcome()
    integrations = _object(message, "integrations", outcome.problems)
    if not is_enabled(integrations, DESTINATION):
        outcome.skip = "disabled_by_integrations"
        return outcome
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in HANDLERS:
        outcome.skip = "unsupported_type"
        return outcome
    for path in OBJECTS.get(kind, ()):
        _object(message, path, outcome.problems)
    HANDLERS[kind](message, known, options, outcome)
    if outcome.calls and handed_to_tag(message):
        outcome.calls = []  # what it taught about the person still counts
        outcome.skip = SENT_BY_PLUGIN
    return outcome


def identify(
    message: dict[str, Any], known: Mapping[str, str], options: Options, outcome: Outcome
) -> None:
    problems = outcome.problems
    person = find_person(message, known, "traits.email", problems)
    if person is None:
        outcome.skip = "missing_email"
        return
    email, new_email = email_change(message, known, person, options, problems)
    record: dict[str, Any] = {"email": email}
    if new_email:
        record["new_email"] = new_email
    if person.user_id:
        record["user_id"] = person.user_id
    record.update(subscriber_fields(message, options.audience_tags, problems))
    if options.browser and record.pop("status", None) is not None:
        problems.append(Problem("traits.status", BROWSER_ONLY + "change a subscription status"))
    leaving = unsubscribing(message, options, record, problems)
    outcome.calls.append(DripCall("subscriber", email, record))
    current = new_email or email
    if leaving:
        outcome.calls.append(unsubscribe_call(current))
    elif campaign := campaign_call(message, options, current, person.user_id, problems):
        outcome.calls.append(campaign)
    outcome.learned.update(person.learned(current, options.browser))


def unsubscribing(
    message: dict[str, Any], options: Options, record: dict[str, Any], problems: list[Problem]
) -> bool:
    """Whether the identify unsubscribes the person from all mailings (then its upsert
    sets no status and it joins no campaign). A page (BROWSER_WRITE_KEY) may not."""
    if not unsubscribes(message, problems):
        return False
    if options.browser:
        problems.append(Problem("traits.unsubscribed", BROWSER_ONLY + "unsubscribe anyone"))
        return False
    record.pop("status", None)
    return True


def track(
    message: dict[str, Any], known: Mapping[str, str], options: Options, outcome: Outcome
) -> None:
    problems = outcome.problems
    event = message.get("event")
    if not isinstance(event, str) or not event.strip():
        problems.append(Problem("event", "expected a non-empty event name"))
        outcome.skip = "missing_event"
        return
    person = find_person(message, known, "properties.email", problems)
    if person is None:
        outcome.skip = "missing_email"
        return
    properties = message.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    outcome.calls.append(track_call(message, event, properties, person, options, problems))
    # properties.email addresses this event only ("Invite Sent" carries the invitee's):
    # what is learned is the person found without it (context.traits, userId, known).
    sender = find_person(message, known, "context.traits.email", [])
    if sender is not None:
        outcome.learned.update(sender.learned(sender.email, options.browser))


def alias(
    message: dict[str, Any], known: Mapping[str, str], options: Options, outcome: Outcome
) -> None:
    """Links `previousId` and `userId`: whichever is known lends its email to the other."""
    user_id = _id(message, "userId", outcome.problems)
    previous_id = _id(message, "previousId", outcome.problems)
    if user_id is None or previous_id is None:
        return
    for source, target in ((user_id, previous_id), (previous_id, user_id)):
        email = known.get(source)
        if is_email(email):
            outcome.learned[target] = str(email).strip()
            return


HANDLERS: dict[str, Handler] = {"identify": identify, "track": track, "alias": alias}


def ids_to_look_up(message: dict[str, Any]) -> set[str]:
    """The ids whose last known email `map_message` may read for `message`, so that the
    caller reads only those: an alias links its two ids, an identify checks its userId
    for a change of email, and a message without an email of its own needs both ids.
    """
    kind = message.get("type")
    if kind == "alias":
        keys: tuple[str, ...] = ("userId", "previousId")
    elif kind == "identify":
        keys = ("userId",) if _has_own_email(message, "traits.email") else _BOTH
    elif kind == "track":  # properties.email is not the person's: they are looked up
        keys = () if _has_own_email(message, "context.traits.email") else _BOTH
    else:
        keys = ()
    found = (message.get(key) for key in keys)
    return {str(i) for i in found if isinstance(i, str | int) and not isinstance(i, bool)} - {""}


_BOTH = ("userId", "anonymousId")


def _has_own_email(message: dict[str, Any], own_path: str) -> bool:
    paths = (own_path, "context.traits.email")
    return any(is_email(dig(message, p)) for p in paths) or is_email(message.get("userId"))


def find_person(
    message: dict[str, Any], known: Mapping[str, str], own_path: str, problems: list[Problem]
) -> Person | None:
    """The message's email, an email-shaped userId, then what `known` says
    (docs/mapping.md, "Finding the email")."""
    user_id = _id(message, "userId", problems)
    anonymous_id = _id(message, "anonymousId", problems)
    email = first_usable(message, (own_path, "context.traits.email"), as_email, problems)
    if email is not None:
        return Person(email, True, user_id, anonymous_id)
    if user_id is not None and is_email(user_id):
        return Person(user_id.strip(), True, user_id, anonymous_id)
    for some_id in (user_id, anonymous_id):
        email = known.get(some_id) if some_id else None
        if is_email(email):
            return Person(str(email).strip(), False, user_id, anonymous_id)
    return None


def email_change(
    message: dict[str, Any],
    known: Mapping[str, str],
    person: Person,
    options: Options,
    problems: list[Problem],
) -> tuple[str, str | None]:
    """(the email Drip knows the person by now, the new email or None).

    A known userId whose email differs (case-insensitively) from the message's
    is renamed with `new_email`, so Drip updates the person instead of adding one.
    A page's message (`options.browser`) never renames anyone.
    """
    explicit = new_email_trait(message, problems)
    if options.browser:
        if explicit:
            problems.append(Problem("traits.new_email", BROWSER_ONLY + "rename a person"))
        return person.email, None
    previous = known.get(person.user_id) if person.user_id and person.from_message else None
    if is_email(previous) and str(previous).strip().lower() != person.email.lower():
        return str(previous).strip(), person.email
    if explicit and explicit.lower() != person.email.lower():
        return person.email, explicit
    return person.email, None


def campaign_call(
    message: dict[str, Any],
    options: Options,
    email: str,
    user_id: str | None,
    problems: list[Problem],
) -> DripCall | None:
    """Subscribe to `integrations.Drip.campaignId`, else `DRIP_CAMPAIGN_ID`, if any.

    A page's message (`options.browser`) may only join DRIP_CAMPAIGN_ID, with the
    campaign's own opt-in, and never brings back a person who left it.
    """
    settings = dig(message, f"integrations.{DESTINATION}")
    settings = settings if isinstance(settings, dict) else {}
    if options.browser:
        settings = _page_settings(settings, options.campaign_id, problems)
    campaign_id = _setting(settings, "campaignId", as_campaign_id, problems) or options.campaign_id
    if not campaign_id:
        return None
    record: dict[str, Any] = {"email": email}
    if user_id:
        record["user_id"] = user_id
    record["reactivate_if_removed"] = (
        _setting(settings, "reactivateIfRemoved", as_bool, problems) is True
    )
    double_optin = _setting(settings, "doubleOptin", as_bool, problems)
    if double_optin is not None:
        record["double_optin"] = double_optin
    return DripCall("campaign", email, record, campaign_id=campaign_id)


def track_call(
    message: dict[str, Any],
    event: str,
    properties: dict[str, Any],
    person: Person,
    options: Options,
    problems: list[Problem],
) -> DripCall:
    """An audience update, a Shopper Activity order, or (by default) a Drip event."""
    email = person.email
    if event in AUDIENCE_EVENTS:
        audience = audience_fields(event, properties, options, problems)
        if audience is not None:
            user = {"user_id": person.user_id} if person.user_id else {}
            return DripCall("subscriber", email, {"email": email, **user, **audience})
    when = occurred_at(message, problems)
    action = order_action(event) if options.orders else None
    if action is not None:
        head = {"email": email, "action": action, **when}
        order = order_record(properties, head, problems)
        if order is not None:
            return DripCall("order", email, order)
    props = event_properties(event, properties, problems)
    return DripCall("event", email, {"email": email, "action": event, **when, "properties": props})


def _page_settings(
    settings: dict[str, Any], campaign_id: str | None, problems: list[Problem]
) -> dict[str, Any]:
    """The campaign settings a page may give: the configured campaign only, nothing else."""
    allowed = {"campaignId": campaign_id} if campaign_id else {}
    why = BROWSER_ONLY + "choose how or where to subscribe"
    for name in ("campaignId", "reactivateIfRemoved", "doubleOptin"):
        given = settings.get(name)
        if given is not None and str(given) != str(allowed.get(name)):
            problems.append(Problem(f"integrations.{DESTINATION}.{name}", why))
    return allowed


def _setting(
    settings: dict[str, Any], name: str, coerce: Callable[[Any], Any], problems: list[Problem]
) -> Any:
    return attempt(settings.get(name), coerce, f"integrations.{DESTINATION}.{name}", problems)


def _id(message: dict[str, Any], key: str, problems: list[Problem]) -> str | None:
    ident: str | None = attempt(message.get(key), as_id, key, problems)
    return ident


def _object(message: dict[str, Any], path: str, problems: list[Problem]) -> dict[str, Any]:
    """The object at `path`; anything else there is reported and treated as absent."""
    value = dig(message, path)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(path, "expected an object; ignored"))
        return {}
    return value
