"""Publishing signed, end-to-end encrypted reports, and feedback on received ones, to Kafka."""

from producers.feedback import FeedbackSender
from producers.outbox import Backlog, ExpiredError, Outbox, OutboxFullError, Queued
from producers.publisher import Published, Publisher, Result, routing_headers

__all__ = [
    "Backlog",
    "ExpiredError",
    "FeedbackSender",
    "Outbox",
    "OutboxFullError",
    "Published",
    "Publisher",
    "Queued",
    "Result",
    "routing_headers",
]
