"""Markdown for a reviewer: what pipgate writes is markup, everything else is text.

Every value that comes from a package, an index, a registry or the
allowlist (names, versions, yank and status reasons, licences, summaries,
reasons, requesters) goes through ``text`` before it reaches a report, so it
renders as the characters it holds and nothing more: no HTML element or
comment, no link, image, heading, emphasis or code span, no table cell
boundary, no line break, no @mention or e-mail link, no bidi override or
invisible character, no string longer than a cell should be.

``Markup`` marks text pipgate composed itself (its own emphasis, its own
code spans around values it escaped first).
"""

from __future__ import annotations

import re

LIMIT = 300
"""Characters a value may show before it is cut (the JSON report keeps it whole)."""

HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
"""Control characters, line and paragraph separators, zero-width and bidi controls."""

_SPECIAL = frozenset("\\`*_[]<>&|~#!:")
"""What can open markup on one line: HTML, entities, emphasis, strikethrough, code, links
and images, table cells, headings, and (with ':') the scheme of an autolink."""
WORD_JOINER = "\u2060"
_WWW = re.compile(r"(?i)\b(www)\.")


class Markup(str):
    """Markdown that pipgate wrote itself, from escaped parts."""

    __slots__ = ()


def text(value: object, *, limit: int = LIMIT) -> Markup:
    """``value`` as Markdown that renders as exactly its characters (cut to ``limit``).

    Hidden characters become spaces and runs of white space one space; every character
    that can open markup on a line is backslash-escaped (CommonMark allows it for any ASCII
    punctuation), so nothing opens a tag, a comment, an entity, a link, emphasis, a code
    span, a cell or an autolink; a word joiner after ``@`` and in ``www.`` keeps e-mail and
    www autolinks and @mentions from forming.
    """
    plain = " ".join(HIDDEN.sub(" ", str(value)).split())
    if len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    escaped = "".join("\\" + ch if ch in _SPECIAL else ch for ch in plain)
    escaped = escaped.replace("@", "@" + WORD_JOINER)
    return Markup(_WWW.sub("\\1" + WORD_JOINER + ".", escaped))


def markup(value: object) -> Markup:
    """A cell's content: pipgate's own markup as it is, any other value escaped."""
    return value if isinstance(value, Markup) else text(value)


def strong(value: object) -> Markup:
    return Markup(f"**{markup(value)}**")


def emphasis(value: object) -> Markup:
    return Markup(f"_{markup(value)}_")


def code(value: object) -> Markup:
    """``value`` in a code span; inside one only the backtick and the pipe mean anything,
    so both are replaced by look-alikes, and the rest shows as it is."""
    plain = " ".join(HIDDEN.sub(" ", str(value)).split())[:LIMIT]
    plain = plain.replace("`", "\u02cb").replace("|", "\u2223")
    return Markup(f"`{plain}`") if plain else Markup("")


def join(parts: list[Markup], separator: str = "") -> Markup:
    return Markup(separator.join(parts))


def visible(value: object) -> str:
    """``value`` for a terminal or a log: every hidden character (an ANSI escape, a carriage
    return, a bidi override) shown as its escape code instead of acting."""
    return HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))
