"""The schema: an outbox per destination plus what ingest must remember.

Times are Unix seconds (float) so that SQLite and PostgreSQL compare them alike.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Every message accepted from Segment or Drip, by source and id: the de-duplication
# key (each direction apart, so one cannot pre-empt the other's ids) and the original
# payload shown beside a dead letter.
received = sa.Table(
    "received",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("message_id", sa.String(200), primary_key=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Index("received_received_at", "source", "received_at"),  # last hour's count, retention
)

# Requests to Segment's tracking API (/v1/*) as they arrived, waiting for the
# worker to validate, de-duplicate and map them (app/pipeline/intake.py). Storing a
# request whole is one insert, however many messages it carries.
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # the /v1 call: track, ..., batch
    sa.Column("body", sa.Text, nullable=False),  # the request's JSON, without writeKey
    sa.Column("received_at", sa.Float, nullable=False),
    # Messages of the request already mapped: a large request is mapped in slices.
    sa.Column("mapped", sa.Integer, nullable=False, server_default="0"),
    # Sent with BROWSER_WRITE_KEY: mapped with the browser's restrictions (README).
    sa.Column("browser", sa.Boolean, nullable=False, server_default=sa.false()),
)

# One row per outgoing call; `body` is exactly what leaves (a Drip record, or a
# Segment message as analytics-python sends it). `available_at` is both the retry
# time and the lease: a claim pushes it a lease ahead, so work held by a dead
# worker comes back.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("destination", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("person", sa.String(320), nullable=False),
    sa.Column("email", sa.String(320)),  # who the call is about (NULL: rows before 0004)
    sa.Column("campaign_id", sa.String(32)),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("message_id", sa.String(200), nullable=False),
    sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("available_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error", sa.Text),
    # Delivered inside one record with other rows of the person (DRIP_COALESCE): the id
    # of that record's first row.
    sa.Column("merged_into", sa.BigInteger().with_variant(sa.Integer, "sqlite")),
    # Claims walk a destination's pending rows in id order (outbox_due) and look for
    # an earlier pending row of the same person (outbox_person, covering). With these
    # two, a claim costs about the same at 1M queued rows as at 10k.
    sa.Index("outbox_due", "destination", "state", "id"),
    sa.Index("outbox_person", "destination", "person", "state", "id"),
    sa.Index("outbox_finished", "state", "finished_at"),  # last hour's deliveries, retention
    sa.Index("outbox_message_id", "message_id"),  # retention keeps what a waiting row shows
)

# Messages accepted but not forwarded, with why (dashboard, metrics).
skipped = sa.Table(
    "skipped",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("message_id", sa.String(200)),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("payload", sa.JSON),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("skipped_at", "at"),
)

# The last email seen for a userId or anonymousId (README, "Finding the email").
identities = sa.Table(
    "identities",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("identities_updated_at", "updated_at"),
)

# People already subscribed to a campaign, so repeated identifies spend no budget.
campaign_members = sa.Table(
    "campaign_members",
    metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("campaign_id", sa.String(32), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("campaign_members_at", "at"),
)

# Deletion requests from Segment (`{"type": "delete"}`): the proof that a person was
# forgotten, kept beyond DATA_RETENTION and holding ids and times only. Whether Drip
# has deleted the subscribers yet is their `delete` rows in the outbox.
deletions = sa.Table(
    "deletions",
    metadata,
    sa.Column("message_id", sa.String(200), primary_key=True),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("subscribers", sa.Integer, nullable=False),  # Drip subscribers to delete
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Index("deletions_requested_at", "requested_at"),
)

# People unsubscribed from all mailings (a Segment identify with `unsubscribed: true`,
# or Drip's `subscriber.unsubscribed_all`): no later upsert sets them back to active
# and no campaign subscription is sent for them.
unsubscribes = sa.Table(
    "unsubscribes",
    metadata,
    sa.Column("email", sa.String(320), primary_key=True),  # lowercased
    sa.Column("at", sa.Float, nullable=False),
)

# The Segment trait name behind each Drip custom-field key (`planType` -> `plan_type`),
# so that an Identify built from Drip's webhooks names the traits as Segment sent them.
field_names = sa.Table(
    "field_names",
    metadata,
    sa.Column("drip_key", sa.String(200), primary_key=True),
    sa.Column("segment_key", sa.String(200), nullable=False),
)

# Heartbeats: /readyz wants a worker seen within the last minute.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("paused", sa.Text),
)

# What the pipeline and the workers count, added in their own transactions, so that
# /metrics shows the same totals whichever process serves it (app/metrics.py).
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("labels", sa.String(200), primary_key=True),  # the label values, as JSON
    sa.Column("value", sa.Float, nullable=False),
)
