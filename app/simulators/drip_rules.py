"""Drip's request rules as pure functions: what a valid record is, and Drip's error bodies.

Sources are files of DripEmail/api-docs `source/includes/`; where Drip documents the
status but not the exact message, the message here is ours and says so.
"""

from __future__ import annotations

from typing import Any

from app.drip_api import BATCH_MAX, MAX_INT, ORDER_ACTIONS, is_email, is_time

Record = dict[str, Any]
Error = dict[str, str]


# rest/_errors.md (403, 404). The 401 body is not documented; its shape follows the others.
AUTHORIZATION_ERROR = {
    "errors": [
        {"code": "authorization_error", "message": "You are not authorized to access this resource"}
    ]
}
NOT_FOUND = {
    "errors": [{"code": "not_found_error", "message": "The resource you requested was not found"}]
}
# rest/_rate_limiting.md: the over-budget body, which is not in the errors[] shape.
RATE_LIMITED = {
    "message": "API rate limit exceeded. Please try again in an hour.",
    "documentation": "https://www.getdrip.com/docs/rest-api#rate-limting",
}
# rest/_subscribers.md: "will fail with a rate limit error and the message ...".
CONCURRENT = {
    "errors": [
        {
            "code": "too_many_requests",
            "message": "Too many concurrent requests for the same subscriber",
        }
    ]
}


def error(code: str, attribute: str, message: str) -> Error:
    """One validation error as in rest/_errors.md ("Validation Errors", 422)."""
    return {"code": code, "attribute": attribute, "message": message}


def errors_body(errors: list[Error]) -> dict[str, list[Error]]:
    return {"errors": errors}


def authentication_error(message: str) -> dict[str, list[Error]]:
    return {"errors": [{"code": "authentication_error", "message": message}]}


def bad_json(detail: str) -> dict[str, Any]:
    """Body not JSON: 400 in this shape (drip-nodejs issue #9, see reference drip-api.md)."""
    return {"status": 400, "error": f"There was a problem in the JSON you submitted: {detail}"}


def parsing_error(key: str) -> dict[str, list[Error]]:
    """JSON without the documented wrapper: 422 parsing_error (drip-nodejs issue #9)."""
    message = (
        "JSON parsing error: The property '#/' did not contain a required property of "
        f"'{key}' or did not match one or more of the required schemas"
    )
    return {"errors": [{"code": "parsing_error", "message": message}]}


def unwrap(body: Any, key: str) -> list[Record] | None:
    """`{key: [record, ...]}` -> the records; None when the wrapper is wrong."""
    if not isinstance(body, dict):
        return None
    records = body.get(key)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return None
    return records


def unwrap_batches(body: Any, key: str) -> list[list[Record]] | None:
    """`{"batches": [{key: [...]}, ...]}` (rest/_batch_api.md) -> the lists of records."""
    batches = unwrap(body, "batches")
    if not batches:
        return None
    lists: list[list[Record]] = []
    for batch in batches:
        records = unwrap(batch, key)
        if records is None:
            return None
        lists.append(records)
    return lists


def count_error(key: str, n: int) -> list[Error]:
    """The 1..1000 rule of rest/_batch_api.md; the code and message are ours."""
    if 1 <= n <= BATCH_MAX:
        return []
    return [error("length_error", key, f"must contain between 1 and {BATCH_MAX} items, got {n}")]


def _email_errors(record: Record, key: str = "email") -> list[Error]:
    value = record.get(key)
    if value is None or is_email(value):
        return []
    return [error("email_error", key, f"{key.replace('_', ' ').capitalize()} is invalid")]


def _identity_errors(record: Record, keys: tuple[str, ...]) -> list[Error]:
    if any(record.get(k) not in (None, "") for k in keys):
        return _email_errors(record) if "email" in keys else []
    return [error("presence_error", "email", "Email is required")]


def _time_errors(record: Record, key: str) -> list[Error]:
    value = record.get(key)
    if value is None:
        return []
    if is_time(str(value)):
        return []
    return [error("time_error", key, f"{key} must be a valid time in ISO-8601 format")]


def subscriber_errors(record: Record) -> list[Error]:
    """rest/_subscribers.md: one of email, id or visitor_uuid; emails must be valid."""
    errors = _identity_errors(record, ("email", "id", "visitor_uuid"))
    errors += _email_errors(record, "new_email")
    if "custom_fields" in record and not isinstance(record["custom_fields"], dict):
        errors.append(error("format_error", "custom_fields", "Custom fields must be an object"))
    return errors


def _value_errors(properties: Any) -> list[Error]:
    if not isinstance(properties, dict) or "value" not in properties:
        return []
    value = properties["value"]
    if isinstance(value, int) and not isinstance(value, bool) and value < MAX_INT:
        return []
    message = f"Value must be an integer (cents) less than {MAX_INT:,}"
    return [error("range_error", "value", message)]


def event_errors(record: Record) -> list[Error]:
    """rest/_events.md: email or id, and action, are required; value in cents."""
    errors = _identity_errors(record, ("email", "id"))
    if record.get("action") in (None, ""):
        errors.append(error("presence_error", "action", "Action is required"))
    properties = record.get("properties")
    if properties is not None and not isinstance(properties, dict):
        errors.append(error("format_error", "properties", "Properties must be an object"))
    return errors + _value_errors(properties) + _time_errors(record, "occurred_at")


def campaign_subscriber_errors(record: Record) -> list[Error]:
    """rest/_campaigns.md: email is required."""
    return _identity_errors(record, ("email",))


def unsubscribe_errors(record: Record) -> list[Error]:
    """rest/_batch_api.md ("Unsubscribe a batch of subscribers"): `{"email"}` each."""
    return _identity_errors(record, ("email",))


def tag_errors(record: Record) -> list[Error]:
    """rest/_tags.md: `{"email", "tag"}`, both needed."""
    errors = _identity_errors(record, ("email",))
    if record.get("tag") in (None, ""):
        errors.append(error("presence_error", "tag", "Tag is required"))
    return errors


def order_errors(record: Record) -> list[Error]:
    """shopper_activity/_order_activity.md: provider, email|person_id, action, order_id."""
    errors = _identity_errors(record, ("email", "person_id"))
    for key in ("provider", "order_id", "action"):
        if record.get(key) in (None, ""):
            errors.append(error("presence_error", key, f"{key} is required"))
    if record.get("action") not in (None, "") and record["action"] not in ORDER_ACTIONS:
        errors.append(error("format_error", "action", "action is not a valid order action"))
    for item in record.get("items") or []:
        if not isinstance(item, dict) or item.get("name") in (None, ""):
            errors.append(error("presence_error", "items.name", "Item name is required"))
            break
    return errors + _time_errors(record, "occurred_at")
