"""Publishing signed, end-to-end encrypted reports, and feedback on received ones, to Kafka."""

from producers.feedback import FeedbackSender
from producers.publisher import Published, Publisher, routing_headers

__all__ = ["FeedbackSender", "Published", "Publisher", "routing_headers"]
