"""A Segment deletion request (`{"type": "delete", "userId"}`): forget the person.

Segment forwards a user deletion (GDPR/CCPA) to its Webhooks destination with the
userId only. The bridge finds the person's addresses (the identity store, and every
address it sent Drip subscriber updates for that userId under), queues a Drip
`DELETE /subscribers/<email>` for each, and purges what it keeps of them in the
same transaction: stored payloads and skips are blanked, identities, campaign
memberships and the unsubscribe record dropped, unsent rows deleted and sent ones
blanked. What stays is ids and times: the `deletions` row, the message ids.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from app.store import deletions, outbox, people, received

log = logging.getLogger(__name__)


def person_key(user_id: str) -> str:
    """The outbox ordering key of a userId's rows (as `segment._pending` sets it)."""
    return f"user:{user_id}"


def addresses(conn: sa.Connection, user_id: str) -> list[str]:
    """Every email the bridge knows `user_id` by, lowercased, oldest first."""
    found = outbox.emails_of(conn, person_key(user_id))
    last = people.email_of(conn, user_id)
    if last and last.lower() not in found:
        found.append(last.lower())
    return found


def forget(
    conn: sa.Connection, message_id: str, message: dict[str, Any], now: float
) -> list[outbox.Pending]:
    """Purge the person of a deletion request and record it; the Drip deletions to send.

    A userId the bridge never saw is recorded all the same, with no call to make.
    """
    user_id = str(message["userId"])
    person = person_key(user_id)
    emails = addresses(conn, user_id)
    values = [user_id, *emails]
    rows = outbox.forget(conn, person, emails, values)
    payloads = received.forget(conn, values, message_id)
    people.forget(conn, user_id, emails)
    deletions.record(conn, message_id, user_id, len(emails), now)
    log.info("deletion %s: %d Drip subscriber(s) to delete, %d outbox rows and %d payloads "
             "purged", message_id, len(emails), rows, payloads)  # fmt: skip
    return [
        outbox.Pending(message_id, "drip", "delete", person, email, {"email": email}, None, now)
        for email in emails
    ]
