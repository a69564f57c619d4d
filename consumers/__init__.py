"""Subscribing by jurisdiction and category: verified reports, quarantine, delivery state."""

from consumers.delivered import Delivered, MemoryDelivered, Seen, SqliteDelivered
from consumers.inbox import (
    FeedbackDelivery,
    ForwardDelivery,
    Inbox,
    InboxDelivery,
    InboxIntake,
    NoticeDelivery,
    RecipientState,
    outsiders,
    recipient_states,
)
from consumers.intake import (
    Accepted,
    Delivery,
    Intake,
    RawIntake,
    Record,
    Rejected,
    Skipped,
    SkipReason,
    Source,
    Verdict,
    Verified,
)
from consumers.quarantine import Quarantine, quarantine_record
from consumers.sink import Sink, SqliteSink
from consumers.subscriber import Handler, RejectHook, Subscriber, new_group_id

__all__ = [
    "Accepted",
    "Delivered",
    "Delivery",
    "FeedbackDelivery",
    "ForwardDelivery",
    "Handler",
    "Inbox",
    "InboxDelivery",
    "InboxIntake",
    "Intake",
    "MemoryDelivered",
    "NoticeDelivery",
    "Quarantine",
    "RawIntake",
    "RecipientState",
    "Record",
    "RejectHook",
    "Rejected",
    "Seen",
    "Sink",
    "SkipReason",
    "Skipped",
    "Source",
    "SqliteDelivered",
    "SqliteSink",
    "Subscriber",
    "Verdict",
    "Verified",
    "new_group_id",
    "outsiders",
    "quarantine_record",
    "recipient_states",
]
