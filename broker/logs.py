"""structlog set-up, done once at start-up by whoever owns the process (the CLI, a service).

On a terminal the output is a readable, coloured console line; otherwise one JSON object per
line, ready for a log shipper. Library code only calls ``structlog.get_logger()`` and logs an
event name with key/value fields. Report plaintext and key material are never logged.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

__all__ = ["configure_logging"]


def _closed_by_aiokafka(record: logging.LogRecord) -> bool:
    """Drop asyncio's "Unclosed AIOKafkaConnection" below DEBUG: aiokafka reports it from a
    connection's ``__del__`` *after closing the socket itself*, when a task cancelled at
    shutdown had opened it after the client closed. It is no fault of the command, whose
    one-paragraph error must stay the only thing on standard error."""
    message = record.getMessage()
    return not (record.name == "asyncio" and message.startswith("Unclosed AIOKafkaConnection"))


def configure_logging(
    level: str = "INFO", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library's logging to share one output.

    ``json=None`` picks the console renderer on a TTY and JSON lines otherwise. Logs go to
    standard error so that standard output stays clean for data (message ids, bootstrap
    addresses, JSON lines) that scripts consume.
    """
    out = stream if stream is not None else sys.stderr
    use_json = not out.isatty() if json is None else json
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")

    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if use_json:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # aiokafka logs through the standard library: route it to the same stream and format.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    if numeric_level > logging.DEBUG:
        handler.addFilter(_closed_by_aiokafka)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric_level, logging.WARNING))
