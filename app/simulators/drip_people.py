"""The people of a fake Drip account: create-or-update, tags, campaign removals."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

Record = dict[str, Any]

# Keys the upsert merges rather than overwrites (rest/_subscribers.md); `initial_status`
# is the status of a person the call creates, not a field of the person.
_MERGED = frozenset({"id", "new_email", "tags", "remove_tags", "custom_fields", "initial_status"})


def _tag_list(value: Any) -> list[str]:
    # drip-nodejs's own batch example sends "tags": "Dog Person", a string.
    if value is None:
        return []
    return [str(t) for t in value] if isinstance(value, list) else [str(value)]


def merged(stored: Record, record: Record) -> Record:
    """`stored` updated by `record`: fields overwrite, custom fields merge, tags add/remove."""
    out = dict(stored)
    out.update((k, v) for k, v in record.items() if k not in _MERGED)
    out["custom_fields"] = {**stored["custom_fields"], **(record.get("custom_fields") or {})}
    removed = set(_tag_list(record.get("remove_tags")))
    added = [t for t in _tag_list(record.get("tags")) if t not in stored["tags"]]
    out["tags"] = [t for t in stored["tags"] + added if t not in removed]
    return out


class People:
    """Subscribers by lowercased email (O(1) per call), with Drip ids as an alias."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self._lock = threading.Lock()
        self._by_key: dict[str, Record] = {}
        self._ids: dict[str, str] = {}  # Drip id -> key in _by_key
        self._removed: set[tuple[str, str]] = set()  # (campaign id, lowercased email)

    def __len__(self) -> int:
        return len(self._by_key)

    def find(self, id_or_email: str) -> Record | None:
        with self._lock:
            found = self._by_key.get(self._ids.get(id_or_email, id_or_email.lower()))
            return dict(found) if found else None

    def upsert(self, record: Record) -> Record | None:
        """Create or update (rest/_subscribers.md); None when `id` names nobody.

        `new_email` renames; if the old address is unknown it creates the person under
        the new one, as the docs say.
        """
        with self._lock:
            key = self._key_of(record)
            if key is None:
                return None
            stored = self._by_key.pop(key, None)
            out = merged(stored or self._blank(record), record)
            if record.get("new_email"):
                out["email"] = record["new_email"]
            key = str(out.get("email") or key).lower()
            self._by_key[key] = out
            self._ids[out["id"]] = key
            return dict(out)

    def remove_tag(self, id_or_email: str, tag: str) -> bool:
        with self._lock:
            found = self._by_key.get(self._ids.get(id_or_email, id_or_email.lower()))
            if found is None:
                return False
            found["tags"] = [t for t in found["tags"] if t != tag]
            return True

    def delete(self, id_or_email: str) -> bool:
        """Forget a person (rest/_subscribers.md, "Delete a subscriber"); False if unknown."""
        with self._lock:
            key = self._ids.get(id_or_email, id_or_email.lower())
            found = self._by_key.pop(key, None)
            if found is None:
                return False
            self._ids.pop(found["id"], None)
            return True

    def unsubscribe_all(self, id_or_email: str) -> Record | None:
        """Set a person's status to unsubscribed (rest/_subscribers.md); None if unknown."""
        with self._lock:
            found = self._by_key.get(self._ids.get(id_or_email, id_or_email.lower()))
            if found is None:
                return None
            found["status"] = "unsubscribed"
            return dict(found)

    def mark_removed(self, email: str, campaign_id: str) -> None:
        with self._lock:
            self._removed.add((campaign_id, email.lower()))

    def is_removed(self, campaign_id: str, email: str) -> bool:
        with self._lock:
            return (campaign_id, email.lower()) in self._removed

    def reactivate(self, campaign_id: str, email: str) -> None:
        with self._lock:
            self._removed.discard((campaign_id, email.lower()))

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._ids.clear()
            self._removed.clear()

    def _key_of(self, record: Record) -> str | None:
        if record.get("email"):
            return str(record["email"]).lower()
        if record.get("id"):
            return self._ids.get(str(record["id"]))
        return f"visitor:{record['visitor_uuid']}" if record.get("visitor_uuid") else None

    def _blank(self, record: Record) -> Record:
        # Defaults from rest/_subscribers.md: time zone Etc/UTC, prospect true, score 30.
        drip_id = f"z{len(self._ids) + 1:019d}"
        return {
            "id": drip_id,
            "status": record.get("initial_status") or "active",
            "email": record.get("email"),
            "time_zone": "Etc/UTC",
            "custom_fields": {},
            "tags": [],
            "prospect": True,
            "base_lead_score": 30,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "href": f"https://api.getdrip.com/v2/{self.account_id}/subscribers/{drip_id}",
            "links": {"account": self.account_id},
        }
