"""What a valid Drip webhook body is (`POST /drip/webhook`), as marshmallow schemas.

`DripWebhookSchema().load(body)` returns the envelope as sent, with ids as
strings and `data.properties` defaulting to `{}`; it raises ValidationError
whose messages name the field and say what Drip sends there. An event name
the bridge does not know is valid (the endpoint counts it as
`unknown_event`); a missing or malformed one is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, post_load, validate

from app.drip_api import MAX_EMAIL, parse_time

EVENT_PATTERN = re.compile(r"\Asubscriber\.[a-z0-9]+(?:_[a-z0-9]+)*\Z")  # \Z: no trailing newline


class IdString(fields.Field[str]):
    """An id Drip sends as a string or an integer, loaded as a string."""

    default_error_messages = {  # noqa: RUF012 (marshmallow reads this class attribute)
        "invalid": "Must be a string or an integer id.",
        "blank": "Must not be empty.",
    }

    def __init__(self, *, allow_blank: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_blank = allow_blank

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.make_error("invalid")
        text = str(value)
        if not self.allow_blank and not text.strip():
            raise self.make_error("blank")
        return text


class IsoDateTimeString(fields.Field[str]):
    """An ISO-8601 date-time, checked and kept exactly as sent (it feeds the event id)."""

    default_error_messages = {  # noqa: RUF012 (marshmallow reads this class attribute)
        "invalid": 'Must be an ISO-8601 date-time like "2013-06-21T10:31:58Z" ({reason}).'
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        try:
            parse_time(value)
        except ValueError as error:
            raise self.make_error("invalid", reason=str(error)) from None
        return str(value)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be empty: Segment needs the subscriber's email.")


class SubscriberSchema(Schema):
    """`data.subscriber`: Drip's subscriber resource; fields we do not read pass through."""

    class Meta:
        unknown = INCLUDE

    error_messages = {  # noqa: RUF012 (marshmallow reads this class attribute)
        "type": "Must be an object: Drip's subscriber resource.",
    }

    email = fields.String(
        required=True,
        validate=[_not_blank, validate.Length(max=MAX_EMAIL)],
        error_messages={
            "required": "Missing: the subscriber's email is required to forward the event.",
            "invalid": "Must be a string: the subscriber's email address.",
        },
    )
    id = IdString(
        required=True,
        error_messages={"required": "Missing: Drip's subscriber id (it feeds the event id)."},
    )
    user_id = IdString(allow_blank=True, allow_none=True)


class DataSchema(Schema):
    """`data`: the account, the subscriber and the event's properties."""

    class Meta:
        unknown = INCLUDE

    error_messages = {  # noqa: RUF012 (marshmallow reads this class attribute)
        "type": "Must be an object with account_id, subscriber and properties.",
    }

    account_id = IdString(
        required=True,
        error_messages={"required": "Missing: the Drip account id that sent the webhook."},
    )
    subscriber = fields.Nested(
        SubscriberSchema,
        required=True,
        error_messages={"required": "Missing: the subscriber the event is about."},
    )
    properties = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        allow_none=True,
        error_messages={"invalid": "Must be an object: the event's properties."},
    )

    @post_load
    def _properties_default(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("properties") is None:
            data["properties"] = {}
        return data


class DripWebhookSchema(Schema):
    """Drip's webhook envelope: `{"event", "data": {...}, "occurred_at"}`."""

    class Meta:
        unknown = INCLUDE

    error_messages = {  # noqa: RUF012 (marshmallow reads this class attribute)
        "type": "The body must be a JSON object: Drip's webhook envelope.",
    }

    event = fields.String(
        required=True,
        validate=validate.Regexp(
            EVENT_PATTERN,
            error='Must be a Drip event name like "subscriber.opened_email", got {input!r}.',
        ),
        error_messages={
            "required": 'Missing: the Drip event name, e.g. "subscriber.opened_email".',
            "invalid": 'Must be a string, e.g. "subscriber.opened_email".',
        },
    )
    data = fields.Nested(
        DataSchema,
        required=True,
        error_messages={"required": "Missing: the object with account_id and subscriber."},
    )
    occurred_at = IsoDateTimeString(
        required=True,
        error_messages={
            "required": 'Missing: when the event happened, ISO-8601 e.g. "2013-06-21T10:31:58Z".'
        },
    )
