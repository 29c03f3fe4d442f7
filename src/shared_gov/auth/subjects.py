"""Who is who: the one canonical key of a staff subject (a "person key").

The platform asks "is this the same person?" in several places: whether a
token's subject is suspended, which per-person purposes it has, whether an
admin is changing their own permissions or the purposes of their own
department, and whether the approver of an issuer change is the proposer
(four eyes). A review found these answered differently — suspension and
"nobody changes their own permissions" compared subjects exactly, four eyes
loosely — so a suspended ``e-3`` acting as ``E-3`` lifted its own
suspension, and an admin ``a-0001`` granted itself purposes through
``…/staff/A-0001``. Every one of those decisions now goes through
:func:`person_key`, and ``catalog.staff`` holds one record per key
(``person_key``, unique per town; catalog migration ``c0016``).

The key is deliberately loose, because the question is "could these be one
person?", and answering "yes" too often only merges records an identity
provider should never have issued as two people:

- Unicode compatibility normalisation (NFKC): full-width ``Ａ－０００１``,
  mathematical letters, ligatures, superscript digits;
- case folding (``A-0001`` is ``a-0001``, ``ß`` is ``ss``);
- white space, control and format characters removed (trailing spaces,
  zero-width space and joiner, bidi marks, soft hyphen, BOM);
- every dash, hyphen and minus look-alike folded to ``-`` (:data:`DASHES`:
  the Unicode dash punctuation, minus signs, the hyphen bullet, the
  katakana prolonged sound mark ``ー``, box-drawing and CJK horizontal
  strokes), and the ideographic full stop ``。`` to ``.``.

Not folded (the residual): look-alike letters of other scripts (Cyrillic
``а`` for Latin ``a``, Greek ``ο`` for ``o``) and look-alikes within Latin
(``0``/``O``, ``1``/``l``/``I``, ``rn``/``m``). A full UTS #39 "skeleton"
would fold those; no maintained Python library provides one
(``confusable-homoglyphs`` detects mixed scripts but has no skeleton,
``confusables`` was last released in 2021), and a stored key must not
change when a dependency updates its data. A town's identity provider must
not issue such look-alike subjects to different people, nor two accounts to
one person (docs/separation-of-duties.md, "One person, one key").

Changing this function changes who is who: ship it with a catalog migration
that recomputes ``catalog.staff.person_key`` (as ``c0016`` computes it) and
resolves the records that then collide.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

DASHES = frozenset(
    # Dash punctuation (general category Pd) that reads as one short stroke;
    # NFKC already maps U+FE58, U+FE63, U+FF0D to these or to "-" (and the
    # half-width U+FF70 to U+30FC). Not the ones that read as "=" or "~"
    # (U+2E40, U+30A0, U+301C, U+3030).
    "\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015"
    "\u2e3a\u2e3b\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead"
    # Minus signs and other horizontal strokes read as a hyphen: the minus
    # sign and its super-/subscript forms, the modifier letter and heavy
    # minus, the hyphen bullet, horizontal line extensions and box-drawing
    # strokes, the katakana prolonged sound mark ー (U+30FC, U+FF70), the
    # kanji 一 and Hangul ㅡ (U+3161, U+1173).
    "\u2212\u207b\u208b\u02d7\u2796\u2043\u23af\u23e4\u2500\u2501"
    "\u30fc\uff70\u4e00\u3161\u1173"
)
"""Characters that :func:`person_key` reads as ``-``."""

_TRANSLATE = {ord(c): "-" for c in DASHES} | {0x3002: ".", 0xFF61: "."}


@lru_cache(maxsize=4096)
def person_key(subject: str) -> str:
    """The canonical form of a staff subject: two subjects with one key are one person.

    Idempotent (``person_key(person_key(s)) == person_key(s)``); the empty
    string for a subject with nothing but white space, control and format
    characters (such a subject names nobody: refuse it where it comes in).
    """
    text = unicodedata.normalize("NFKC", subject).casefold()
    text = "".join(
        ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc")
    )
    text = text.translate(_TRANSLATE)
    # Case folding and removals can make new compositions; settle them.
    return unicodedata.normalize("NFKC", text)


def same_person(a: str, b: str) -> bool:
    """Whether subjects ``a`` and ``b`` are one person (see :func:`person_key`)."""
    return person_key(a) == person_key(b)
