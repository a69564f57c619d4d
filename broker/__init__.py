"""The trusted core of fusionbus: envelope crypto, trust, policy, topics, the Kafka runtime.

Imports ``schemas`` and nothing else of ours. Subpackages state their own public API.
"""

__all__: list[str] = []
