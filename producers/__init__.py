"""Publishing signed, end-to-end encrypted reports to Kafka."""

from producers.publisher import Published, Publisher, routing_headers

__all__ = ["Published", "Publisher", "routing_headers"]
