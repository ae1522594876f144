"""Untrusted text for a terminal: what ordo shows of controller answers, journal contents,
paths and errors can neither be read as rich markup nor reach the terminal raw. No import
beyond rich's markup, so that every command may use it (ordo/render.py re-exports it)."""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape

# C0 and C1 controls (ESC, CR, LF, BS ...), DEL, the characters that reorder or split text on screen, the
# ones that show nothing (a soft hyphen, zero-width spaces and joiners, U+2060-2064, a BOM: "vfw" and
# "v\u200bfw" looked alike), and halves of UTF-16 pairs (no text: writing one to the terminal raised
# UnicodeEncodeError).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064"
                     "\u2066-\u2069\ufeff\ud800-\udfff]")


_UNSAFE_IN_LINES = re.compile(_UNSAFE.pattern.replace("\x00-\x1f", "\x00-\x09\x0b-\x1f"))


def _escape(match: re.Match) -> str:
    return f"\\x{ord(match[0]):02x}" if ord(match[0]) < 0x100 else f"\\u{ord(match[0]):04x}"


def terminal_safe(text: Any) -> str:
    """Untrusted text (controller outputs and errors, journal contents) for a terminal: control
    characters and bidirectional overrides become visible escapes (``\\x1b``, ``\\u202e``), so
    they can neither colour, move the cursor, nor start a line of their own."""
    return _UNSAFE.sub(_escape, str(text))


def terminal_safe_lines(text: str) -> str:
    """``terminal_safe`` of each line of ``text``, its line breaks kept."""
    return _UNSAFE_IN_LINES.sub(_escape, text)


def shown(text: Any) -> str:
    """Untrusted text inside rich markup: terminal-safe, and never read as markup (``[red]``)."""
    return escape(terminal_safe(text))


def shown_lines(text: Any) -> str:
    """``shown`` of each line of ``text``, its line breaks kept."""
    return escape(terminal_safe_lines(str(text)))


__all__ = ["shown", "shown_lines", "terminal_safe", "terminal_safe_lines"]
