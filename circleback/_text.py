"""Text from the API made safe to show: escaped for a terminal, stripped for XML.

CircleCI's data (workflow and job names, statuses, error messages) is written by whoever
can edit a config or trigger a pipeline. Printed as is, a workflow name holding a carriage
return, a newline or an ANSI escape can forge a line of A's log ("all downstream pipelines
succeeded"), hide one, or drive the terminal; a NUL or an ESC makes a JUnit file invalid
XML, and a lone surrogate cannot be encoded at all. Every place that shows API text goes
through these three functions, so the rule lives in one place.
"""

from __future__ import annotations

import re

#: C0 controls, DEL, C1 controls (0x9B is a one-character CSI on some terminals; 0x85 is
#: NEL), the line and paragraph separators U+2028/U+2029 (a new line in some terminals and
#: log viewers: every Unicode line break is covered) and lone surrogates (valid in a JSON
#: string, unencodable as UTF-8).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: The same, less the line feed: for whole documents whose line structure is ours.
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: What XML 1.0 forbids or discourages, less tab and newline: C0, DEL, C1, surrogates,
#: U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` for one line of a terminal: every control character as ``\\xNN`` / ``\\uNNNN``.

    Newlines, carriage returns, tabs and every other Unicode line break (NEL, U+2028,
    U+2029) are escaped too: a value from the API never starts a line of its own. Text
    without control characters is returned unchanged.
    """
    return _CONTROL.sub(_escape, text)


def printable_lines(text: str) -> str:
    """A document of several lines for a terminal: as ``printable`` but keeping ``\\n``.

    For output whose newlines circleback wrote itself (each API value in it has already
    passed ``printable``); this is the last guard against ESC, CR and NUL reaching a terminal.
    """
    return _CONTROL_BUT_NEWLINE.sub(_escape, text)


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry removed (tab and newline kept)."""
    return _NOT_XML.sub("", text)
