"""The defects ``dancu synth extract`` gives an agency's rows, as pure functions (each
hand-tested): damaged numbers, names as people and spreadsheets mangle them, dates in other
formats or slightly wrong, shortened province names, Windows-1258's decomposed letters."""

from __future__ import annotations

import calendar
import random
import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Final

from dancu.core.names import fold
from dancu.synth.names import VARIANTS

_TONE_MARKS: Final = frozenset("\u0300\u0301\u0303\u0309\u0323")
_OPEN_PAIR: Final = re.compile(r"(?<![aăâeêioôơuưy])(oa|oe|uy)$")
_TYPO_LETTERS: Final = "abcdeghiklmnopqrstuvxy"  # the Vietnamese alphabet's plain letters


def drop_leading_zeros(number: str) -> str:
    """A spreadsheet's reading of a number as an integer: ``001090012345`` → ``1090012345``."""
    return number.lstrip("0") or "0"


def damage_id(number: str, kind: str, rnd: random.Random, taken: Callable[[str], bool]) -> str:
    """``number`` with two adjacent digits swapped (``kind="id_transposed"``) or one digit wrong
    (``"id_typo"``), never a number ``taken`` (another person's); ``number`` if none fits."""
    if kind == "id_transposed":
        spots = [(i, number[i + 1] + number[i]) for i in range(len(number) - 1)]
    else:
        spots = [(i, d) for i in range(len(number)) for d in "0123456789"]
    rnd.shuffle(spots)
    candidates = (number[:i] + d + number[i + len(d) :] for i, d in spots)
    return next((c for c in candidates if c != number and not taken(c)), number)


def space_id(number: str, rnd: random.Random) -> str:
    """The number grouped for legibility: ``001 090 012 345``, ``001-090-012-345``..."""
    size, sep = rnd.choice(((3, " "), (3, "-"), (4, " ")))
    return sep.join(number[i : i + size] for i in range(0, len(number), size))


def swap_tone_placement(name: str) -> str:
    """The tone mark moved to the other vowel of each open oa/oe/uy syllable: old and new
    placement (Hòa ↔ Hoà, Thủy ↔ Thuỷ, Khỏe ↔ Khoẻ). "Quý" stays: its u belongs to qu."""
    nf = unicodedata.normalize
    words = name.split(" ")
    for k, word in enumerate(words):
        toned = [i for i, c in enumerate(word) if _TONE_MARKS & set(nf("NFD", c))]
        if len(toned) != 1:
            continue
        pos, nfd = toned[0], nf("NFD", word[toned[0]])
        tone = next(c for c in nfd if c in _TONE_MARKS)
        bare = [*word[:pos], nf("NFC", nfd.replace(tone, "")), *word[pos + 1 :]]
        low = "".join(bare).lower()
        m = _OPEN_PAIR.search(low)
        if m is None or pos not in (m.start(), m.start() + 1) or low.startswith("qu"):
            continue
        target = m.start() + 1 if pos == m.start() else m.start()
        bare[target] = nf("NFC", bare[target] + tone)
        words[k] = "".join(bare)
    return " ".join(words)


def strip_diacritics(name: str) -> str:
    """The name without any mark, case kept: "Đặng Thị Hòa" → "Dang Thi Hoa"."""
    plain = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in plain if unicodedata.category(c) != "Mn")


def given_name_first(name: str) -> str:
    """Western order: "Nguyễn Văn Hùng" → "Hùng Nguyễn Văn"."""
    words = name.split(" ")
    return " ".join([words[-1], *words[:-1]])


def swap_variant(name: str) -> str:
    """The first Hoàng/Huỳnh or Vũ/Võ read the other way: one Hán character each (黃, 武;
    reference/vietnam.md §6)."""
    words = name.split(" ")
    k = next((k for k, w in enumerate(words) if w in VARIANTS), None)
    if k is not None:
        words[k] = VARIANTS[words[k]]
    return " ".join(words)


def typo_name(name: str, rnd: random.Random) -> str:
    """One letter substituted, dropped or added in a word other than the first, never the
    word's capital; a substitute differs from the letter even without its marks."""
    words = name.split(" ")
    k = rnd.randrange(1, len(words)) if len(words) > 1 else 0
    w = words[k]
    op = rnd.choice(("sub", "del", "ins")) if len(w) > 1 else "ins"
    i = rnd.randrange(1, len(w) + (op == "ins"))
    if op == "ins":
        words[k] = w[:i] + rnd.choice(_TYPO_LETTERS) + w[i:]
    elif op == "del":
        words[k] = w[:i] + w[i + 1 :]
    else:
        words[k] = w[:i] + rnd.choice(_TYPO_LETTERS.replace(fold(w[i]), "")) + w[i + 1 :]
    return " ".join(words)


def drop_middle(name: str, rnd: random.Random) -> str:
    """The name without one of its middle words (unchanged with fewer than three words)."""
    words = name.split(" ")
    if len(words) >= 3:
        del words[rnd.randrange(1, len(words) - 1)]
    return " ".join(words)


def add_spaces(name: str, rnd: random.Random) -> str:
    """A doubled space between two words, or a space before or after the name."""
    spaces = [i for i, c in enumerate(name) if c == " "]
    where = rnd.choice(("inside", "before", "after"))
    if where == "inside" and spaces:
        i = rnd.choice(spaces)
        return name[:i] + " " + name[i:]
    return " " + name if where == "before" else name + " "


def format_date(d: date, style: str) -> str:
    """``d`` as dd/mm/yyyy (style ""), ``fmt_date_iso``, ``fmt_date_short`` (d/m/yyyy),
    ``dob_year_only`` or ``dob_placeholder`` (01/01/yyyy: the year known, the day not)."""
    if style == "dob_placeholder":
        return f"01/01/{d.year}"
    if style == "fmt_date_iso":
        return d.isoformat()
    if style == "fmt_date_short":
        return f"{d.day}/{d.month}/{d.year}"
    return str(d.year) if style == "dob_year_only" else f"{d.day:02d}/{d.month:02d}/{d.year}"


def swap_day_month(d: date) -> date | None:
    """The date with day and month swapped, when that is another real date."""
    return date(d.year, d.day, d.month) if d.day <= 12 and d.day != d.month else None


def date_typo(d: date, rnd: random.Random, latest: date) -> date | None:
    """Another real date up to ``latest``, one digit away in the day or the year's last digit."""
    out = set()
    for digit in range(10):
        for day in (digit * 10 + d.day % 10, d.day // 10 * 10 + digit):
            if 1 <= day <= calendar.monthrange(d.year, d.month)[1]:
                out.add(date(d.year, d.month, day))
        year = d.year - d.year % 10 + digit
        if (d.month, d.day) != (2, 29) or calendar.isleap(year):
            out.add(date(year, d.month, d.day))
    options = sorted(c for c in out if c <= latest and c != d)
    return rnd.choice(options) if options else None


def cp1258_form(text: str) -> str:
    """The text in code page 1258's repertoire: a letter it lacks precomposed (ễ, ự) becomes
    the letter with its vowel mark plus a combining tone mark, as Windows writes it."""
    text = unicodedata.normalize("NFC", text)
    return text if text.isascii() else "".join(_cp1258_char(c) for c in text)


def _cp1258_char(ch: str) -> str:
    try:
        ch.encode("cp1258")
        return ch
    except UnicodeEncodeError:
        nfd = unicodedata.normalize("NFD", ch)
        tones = "".join(c for c in nfd if c in _TONE_MARKS)
        return unicodedata.normalize("NFC", "".join(c for c in nfd if c not in _TONE_MARKS)) + tones


def short_province(name: str, rnd: random.Random) -> str:
    """A province's name as people shorten it: "TP HCM", "TP. Hồ Chí Minh", "Hà Nội"..."""
    if name == "Thành phố Hồ Chí Minh":
        return rnd.choice(("TP HCM", "TP.HCM", "TP. Hồ Chí Minh", "Hồ Chí Minh"))
    core = core_province_name(name)
    return rnd.choice((f"TP {core}", f"TP. {core}", core)) if name.startswith("Thành") else core


def core_province_name(province: str) -> str:
    return province.removeprefix("Thành phố ").removeprefix("Tỉnh ")
