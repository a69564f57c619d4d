"""The one rich console the CLI writes human-facing text to (standard error)."""

from rich.console import Console

__all__ = ["err_console"]

err_console = Console(stderr=True)
