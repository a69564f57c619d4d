"""The ``fusionbus`` command: a thin shell composing ``broker``, ``producers`` and ``consumers``."""

__all__: list[str] = []
