"""Subscribing by jurisdiction and category, tailing and live feeds (arrive with issue #4)."""

__all__: list[str] = []
