"""The rich consoles the CLI writes to: data on standard output, the rest on standard error."""

from rich.console import Console

__all__ = ["err_console", "out_console"]

err_console = Console(stderr=True)
out_console = Console()
