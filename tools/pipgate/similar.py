"""Names that look alike: what a typosquat counts on.

Pure functions over normalised names. Two names are close when one turns
into the other by one edit (a letter added, dropped, changed or two swapped),
by a doubled or dropped letter, by separators (``-`` ``_`` ``.``) alone, by a
``python-``/``py``/``3`` prefix or suffix, or by confusable letters (``I`` and
``l``, ``0`` and ``o``, ``rn`` and ``m``). Each rule says, in words, how.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources

from pipgate.names import NormalizedName, normalize

_AFFIXES = re.compile(r"^(?:python-?3?-?|py-?3?-?)|(?:-?python-?3?|-?py3?|-?3)$")
# Compared after lower-casing, so I/l shows up as i/l: each maps to one skeleton letter.
_CONFUSABLE = str.maketrans({"i": "l", "1": "l", "0": "o", "5": "s", "$": "s"})


@functools.cache
def popular_names() -> tuple[NormalizedName, ...]:
    """The popular names shipped with pipgate (``data/popular.txt``), most popular first."""
    text = resources.files("pipgate").joinpath("data/popular.txt").read_text(encoding="utf-8")
    return tuple(
        normalize(line.strip())
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def _one_edit(a: str, b: str) -> str | None:
    """How ``a`` becomes ``b`` in one edit, or None."""
    if a == b:
        return None
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return f"'{a[diffs[0]]}' in place of '{b[diffs[0]]}'"
        if len(diffs) == 2 and diffs[1] == diffs[0] + 1:
            i = diffs[0]
            if a[i] == b[i + 1] and a[i + 1] == b[i]:
                return f"'{a[i : i + 2]}' swapped"
        return None
    if abs(len(a) - len(b)) != 1:
        return None
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    for i in range(len(longer)):
        if longer[:i] + longer[i + 1 :] == shorter:
            letter = longer[i]
            if longer is a:
                doubled = (i > 0 and longer[i - 1] == letter) or (
                    i + 1 < len(longer) and longer[i + 1] == letter
                )
                return f"'{letter}' doubled" if doubled else f"'{letter}' added"
            return f"'{letter}' left out"
    return None


def _core(name: str) -> str:
    return _AFFIXES.sub("", name)


def _skeleton(name: str) -> str:
    return name.replace("rn", "m").replace("vv", "w").translate(_CONFUSABLE).replace("-", "")


def resemblance(candidate: str, known: str) -> str | None:
    """Why ``candidate`` (as written) may be mistaken for ``known``, or None.

    ``known`` is a normalised name; ``candidate`` is compared both normalised
    and as written, since confusable capitals (``jeIlyfish``) are lost in
    normalisation.
    """
    normal = normalize(candidate)
    if normal == known:
        return None
    if len(known) < 4:  # short names are one edit from too many others to mean anything
        return None
    plain_candidate, plain_known = normal.replace("-", ""), known.replace("-", "")
    if plain_candidate == plain_known:
        return "the same but for separators"
    if "I" in candidate and normalize(candidate.replace("I", "l")) == known:
        return "a capital 'I' where 'l' belongs"
    how = _one_edit(normal, known)
    if how is not None:
        return how
    if _core(normal) and _core(normal) == _core(known):
        return "the same but for a python/py/3 prefix or suffix"
    if _skeleton(normal) == _skeleton(known) or _skeleton(candidate.lower()) == _skeleton(known):
        return "confusable letters"
    return None


def closest(candidate: str, known: Iterable[NormalizedName]) -> tuple[NormalizedName, str] | None:
    """The first name of ``known`` (in the order given) ``candidate`` resembles, and how."""
    for name in known:
        how = resemblance(candidate, name)
        if how is not None:
            return name, how
    return None
