"""The message contract: pure data models, no I/O, importing nothing else of fusionbus."""

__all__: list[str] = []
