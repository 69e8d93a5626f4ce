"""What a valid Segment message is (Segment's spec, common fields and per type)."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from app.segment_api import DELETE, TYPES

KNOWN_TYPES = (*TYPES, DELETE)


class Id(fields.Field):
    """Segment ids are strings; libraries may send numbers, which we accept."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("must be a string")
        return str(value)


class SegmentMessageSchema(Schema):
    class Meta:
        unknown = INCLUDE

    type = fields.String(
        required=True,
        validate=validate.OneOf(KNOWN_TYPES, error="must be one of " + ", ".join(KNOWN_TYPES)),
        error_messages={"required": "is missing: every Segment message has a type"},
    )
    # Ids are remembered in columns of 200 characters.
    messageId = Id(validate=validate.Length(max=200))
    userId = Id(allow_none=True, validate=validate.Length(max=200))
    anonymousId = Id(allow_none=True, validate=validate.Length(max=200))
    previousId = Id(allow_none=True, validate=validate.Length(max=200))
    event = fields.String()
    traits = fields.Dict(allow_none=True)
    properties = fields.Dict(allow_none=True)
    context = fields.Dict(allow_none=True)
    integrations = fields.Dict(allow_none=True)

    @validates_schema
    def _per_type(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("type")
        if kind == "track" and not (data.get("event") or "").strip():
            raise ValidationError("a track call needs a non-empty event name", "event")
        if kind == "alias" and not (data.get("previousId") and data.get("userId")):
            raise ValidationError("an alias call needs previousId and userId", "previousId")
        if kind == DELETE and not data.get("userId"):
            raise ValidationError("a deletion request needs the userId to delete", "userId")
        if kind != "alias" and not (data.get("userId") or data.get("anonymousId")):
            raise ValidationError("needs a userId or an anonymousId", "userId")


SCHEMA = SegmentMessageSchema()


def problems(message: Any) -> str | None:
    """None for a valid message, else one sentence saying what is wrong."""
    if not isinstance(message, dict):
        return f"a Segment message is a JSON object, got {type(message).__name__}"
    errors = SCHEMA.validate(message)
    if not errors:
        return None
    return "; ".join(f"{name} {_flatten(text)}" for name, text in sorted(errors.items()))


def _flatten(text: Any) -> str:
    if isinstance(text, list):
        return ", ".join(_flatten(t) for t in text)
    if isinstance(text, dict):
        return ", ".join(f"{k} {_flatten(v)}" for k, v in text.items())
    return str(text)
