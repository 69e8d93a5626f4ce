"""Merging a person's waiting subscriber updates: the same end state in Drip as one by one.

Each rule is checked against the fake Drip's own upsert (app/simulators/drip_people.py):
the records applied one at a time, and their merge applied once, leave the same person.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.delivery.coalesce import merge
from app.simulators.drip_people import People

Record = dict[str, Any]
EMAIL = "jd@example.com"
EXISTING = {"email": EMAIL, "first_name": "Jo", "tags": ["Customer", "Old"],
            "custom_fields": {"plan": "free", "seats": 1}}  # fmt: skip


def end_state(records: list[Record], before: Record | None) -> dict[str, Record]:
    """Every person in a fresh fake account after `before` (if any), then `records`."""
    people = People("9999999")
    if before is not None:
        people.upsert(before)
    for record in records:
        people.upsert(record)
    emails = {
        str(r.get("new_email") or r["email"]).lower()
        for r in [*records, *([before] if before else [])]
    }
    emails |= {str(r["email"]).lower() for r in records}
    found = {email: people.find(email) for email in sorted(emails)}
    return {email: _comparable(person) for email, person in found.items() if person}


def _comparable(person: Record) -> Record:
    """The person without the creation time (a clock reading); tags as a set, as Drip keeps them."""
    return {k: (sorted(v) if k == "tags" else v) for k, v in person.items() if k != "created_at"}


CASES = [
    pytest.param(
        [{"email": EMAIL, "first_name": "Jane", "city": "Paris"},
         {"email": EMAIL, "first_name": "Janet", "phone": "+33 1"}],
        "Janet",
        id="later fields win and earlier ones stay",
    ),
    pytest.param(
        [{"email": EMAIL, "custom_fields": {"plan": "pro", "team": "a"}},
         {"email": EMAIL, "custom_fields": {"plan": "enterprise", "size": 9}}],
        None,
        id="custom fields are merged by key, the later value winning",
    ),
    pytest.param(
        [{"email": EMAIL, "tags": ["Lead"]}, {"email": EMAIL, "remove_tags": ["Lead"]}],
        None,
        id="a tag applied then removed ends removed",
    ),
    pytest.param(
        [{"email": EMAIL, "remove_tags": ["Old"]}, {"email": EMAIL, "tags": ["Old"]}],
        None,
        id="a tag removed then applied again ends applied",
    ),
    pytest.param(
        [{"email": EMAIL, "tags": ["A", "B"], "remove_tags": ["Customer"]},
         {"email": EMAIL, "tags": ["C"], "remove_tags": ["A"]},
         {"email": EMAIL, "tags": ["Customer", "A"], "remove_tags": ["B"]}],
        None,
        id="tags applied and removed over three updates end as sent one by one",
    ),
    pytest.param(
        [{"email": EMAIL, "tags": ["X"], "remove_tags": ["X"]},
         {"email": EMAIL, "first_name": "J"}],
        None,
        id="a tag applied and removed in one update stays removed, as Drip does",
    ),
    pytest.param(
        [{"email": EMAIL, "first_name": "Jane"},
         {"email": EMAIL, "new_email": "jane@new.example.com", "user_id": "u1"},
         {"email": "jane@new.example.com", "custom_fields": {"plan": "pro"}, "tags": ["Moved"]}],
        None,
        id="new_email renames the person and later updates follow the new address",
    ),
    pytest.param(
        [{"email": EMAIL, "new_email": "a@example.com"},
         {"email": "a@example.com", "new_email": "b@example.com", "last_name": "Doe"}],
        None,
        id="two renames in a row end at the last address",
    ),
    pytest.param(
        [{"email": EMAIL, "custom_fields": {"vip": True}, "tags": ["vip"]},
         {"email": EMAIL, "custom_fields": {"churn_risk": True}, "tags": ["churn_risk"]},
         {"email": EMAIL, "custom_fields": {"vip": False}, "remove_tags": ["vip"]}],
        None,
        id="Engage audiences entered and exited keep their field and tag in step",
    ),
    pytest.param(
        [{"email": "new@example.com", "initial_status": "unsubscribed", "first_name": "N"},
         {"email": "new@example.com", "initial_status": "active", "city": "Lyon"}],
        None,
        id="initial_status counts only for the update that creates the person",
    ),
    pytest.param(
        [{"email": "new@example.com", "first_name": "N"},
         {"email": "new@example.com", "initial_status": "unsubscribed"}],
        None,
        id="a later initial_status does not change a person the first update created",
    ),
    pytest.param(
        [{"email": EMAIL, "status": "unsubscribed"}, {"email": EMAIL, "status": "active"},
         {"email": EMAIL, "prospect": False, "base_lead_score": 10, "eu_consent": "granted"}],
        None,
        id="status and the other first-class fields take their last value",
    ),
    pytest.param(
        [{"email": EMAIL, "first_name": "A"}, {"email": "other@example.com", "first_name": "B"},
         {"email": EMAIL, "last_name": "C"}],
        None,
        id="an update for another address is not merged into the person's",
    ),
]  # fmt: skip


@pytest.mark.parametrize("records, first_name", CASES)
@pytest.mark.parametrize("before", [None, EXISTING], ids=["new person", "existing person"])
def test_merged_updates_leave_the_same_person_in_drip_as_one_by_one(
    records: list[Record], first_name: str | None, before: Record | None
) -> None:
    merged = merge(records)
    assert sum(count for _, count in merged) == len(records)
    assert end_state([record for record, _ in merged], before) == end_state(records, before)
    if first_name is not None:
        assert end_state(records, before)[EMAIL]["first_name"] == first_name


def test_consecutive_updates_of_one_address_become_one_record() -> None:
    records: list[Record] = [
        {"email": EMAIL, "tags": ["a"]},
        {"email": "JD@example.com", "remove_tags": ["a"]},
        {"email": EMAIL, "tags": ["b"], "custom_fields": {"x": 1}},
    ]
    assert merge(records) == [
        ({"email": EMAIL, "custom_fields": {"x": 1}, "tags": ["b"], "remove_tags": ["a"]}, 3)
    ]


def test_an_update_for_another_address_starts_a_new_record() -> None:
    records = [{"email": EMAIL, "first_name": "A"}, {"email": "x@example.com", "first_name": "B"}]
    assert merge(records) == [(records[0], 1), (records[1], 1)]
