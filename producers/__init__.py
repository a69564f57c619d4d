"""Publishing signed, encrypted reports to Kafka (the ``Publisher`` arrives with issue #4)."""

__all__: list[str] = []
