"""Subscribing by jurisdiction and category: verified reports, quarantine, delivery state."""

from consumers.delivered import Delivered, MemoryDelivered, Seen, SqliteDelivered
from consumers.quarantine import QUARANTINE_HEADERS, Quarantine
from consumers.subscriber import Delivery, Handler, Subscriber, new_group_id

__all__ = [
    "QUARANTINE_HEADERS",
    "Delivered",
    "Delivery",
    "Handler",
    "MemoryDelivered",
    "Quarantine",
    "Seen",
    "SqliteDelivered",
    "Subscriber",
    "new_group_id",
]
