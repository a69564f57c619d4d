"""The consoles the CLI writes to (data on standard output, the rest on standard error), and
the two ways untrusted text reaches them.

Text from reports, directory records, Kafka headers or verifier details is *data*: it is
never interpreted as rich markup (it goes into :class:`rich.text.Text`, not a markup string)
and never reaches the terminal raw: :func:`visible` shows C0 and C1 controls, bidirectional
overrides and other invisible format characters as escapes (``\\x1b``, ``\\u202e``), so a
title cannot clear the screen, hide text, inject a hyperlink or reverse a line.
:func:`json_line` writes exact JSON with the same characters as ``\\u`` escapes.

Messages are built the same way: :func:`say` fills a constant template (whose line breaks
are kept) with untrusted values made visible; :func:`print_error` prints an error message,
each of its lines made visible, after a red ``error:``. No message is ever a markup string.
"""

from __future__ import annotations

import re

import orjson
from rich.console import Console
from rich.text import Text

__all__ = [
    "err_console",
    "json_line",
    "line",
    "out_console",
    "print_error",
    "say",
    "visible",
]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb]"
)
"""C0, DEL, C1, soft hyphen, and the format characters that change how a line reads: the
Arabic letter mark, zero-width characters, line/paragraph separators, bidi embeddings,
overrides and isolates, invisible operators, the BOM and interlinear annotations."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` with every control or invisible format character shown as an escape."""
    return _UNSAFE.sub(_escape, str(text))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_line(value: object) -> str:
    """One line of exact JSON (orjson), with C1 and format characters ``\\u``-escaped: the
    same JSON value, safe to print on a terminal."""
    return _UNSAFE.sub(_json_escape, orjson.dumps(value).decode())


def line(*parts: str | tuple[str, str]) -> Text:
    """A console line from plain parts and (text, style) pairs; every text is untrusted,
    made :func:`visible` and never parsed as markup."""
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(visible(part[0]), style=part[1])
        else:
            text.append(visible(part))
    return text


def _lines(text: str) -> Text:
    """``text`` made visible line by line, its own line breaks kept."""
    return Text("\n").join(Text(visible(part)) for part in text.split("\n"))


def say(template: str, /, *, style: str = "", **values: object) -> None:
    """Print ``template`` (constant text of ours, ``{name}`` fields, line breaks kept) to
    standard error, every value made :func:`visible`; never parsed as markup."""
    text = Text(template.format_map({k: visible(v) for k, v in values.items()}), style=style)
    err_console.print(text)


def print_error(message: str) -> None:
    """``error: <message>`` on standard error: one paragraph, its lines made visible."""
    text = Text("error:", style="bold red")
    text.append(" ")
    text.append_text(_lines(message))
    err_console.print(text)
