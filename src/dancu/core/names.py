"""Vietnamese names: storage form and search keys (DESIGN "Names").

- ``clean_name``: the form we store: exactly as given, but NFC and single-spaced.
- ``canonical_name``: tone marks placed by one rule so that "Hòa" and "Hoà" (different code
  points even after NFC) are the same string; ``search_key`` is its lower-case form.
- ``fold``: search key without any marks, Đ->D, lower case ("nguyen thi hoa").
- ``token_key``: the folded tokens sorted, so family/middle/given order does not matter.
- ``FAMILY_NAMES`` / ``FOLDED_FAMILY_NAMES``: the family names (họ) that tell which end of a
  name is the family's, for names written given name first ("Hùng Văn Nguyễn").
"""

from __future__ import annotations

import re
import unicodedata

# Combining marks that carry tone (as opposed to vowel quality: circumflex, breve, horn).
_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
_VOWELS = set("aăâeêioôơuưy")
_QUALITY_VOWELS = set("ăâêôơư")
_SPACES = re.compile(r"\s+")
_PLAIN = str.maketrans({"đ": "d", "Đ": "D"})
# Two-vowel endings where the modern rule puts the tone on the second vowel (hoà, khoẻ, thuỷ).
_SECOND_VOWEL_PAIRS = {"oa", "oe", "uy"}


def _split_tone(syllable: str) -> tuple[str, str | None]:
    """Return the syllable without its tone mark (NFC) and the tone mark, if any."""
    decomposed = unicodedata.normalize("NFD", syllable)
    tone = next((ch for ch in decomposed if ch in _TONES), None)
    bare = "".join(ch for ch in decomposed if ch not in _TONES)
    return unicodedata.normalize("NFC", bare), tone


def _tone_position(bare: str) -> int | None:
    """Index in ``bare`` of the vowel that carries the tone, by the modern (new-style) rule."""
    low = bare.lower()
    idx = [i for i, ch in enumerate(low) if ch in _VOWELS]
    if not idx:
        return None
    # "gi" and "qu" start with a consonant cluster: their i/u is not the nucleus.
    if low.startswith(("gi", "qu")) and len(idx) > 1 and idx[0] == 1:
        idx = idx[1:]
    # Keep only the first contiguous run of vowels (the nucleus).
    run = [idx[0]]
    for i in idx[1:]:
        if i != run[-1] + 1:
            break
        run.append(i)
    quality = [i for i in run if low[i] in _QUALITY_VOWELS]
    if quality:
        return quality[-1]
    if len(run) == 1:
        return run[0]
    ends_in_consonant = run[-1] < len(low) - 1
    if ends_in_consonant:
        return run[-1]
    if len(run) == 2:
        return run[1] if low[run[0] : run[1] + 1] in _SECOND_VOWEL_PAIRS else run[0]
    return run[1]


def canonical_syllable(syllable: str) -> str:
    bare, tone = _split_tone(syllable)
    if tone is None:
        return bare
    pos = _tone_position(bare)
    if pos is None:
        return unicodedata.normalize("NFC", unicodedata.normalize("NFD", syllable))
    placed = bare[: pos + 1] + tone + bare[pos + 1 :]
    return unicodedata.normalize("NFC", placed)


def clean_name(name: str) -> str:
    """The stored form of a name: as given, in NFC, trimmed and single-spaced."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", name)).strip()


def canonical_name(name: str) -> str:
    """NFC, single-spaced, every syllable's tone mark on the vowel the modern rule picks."""
    text = clean_name(name)
    return " ".join(canonical_syllable(s) for s in text.split(" ")) if text else ""


def fold(name: str) -> str:
    """Search key without diacritics: 'Đặng Thị Hoà' -> 'dang thi hoa'."""
    decomposed = unicodedata.normalize("NFD", name.translate(_PLAIN))
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return _SPACES.sub(" ", bare).strip().lower()


def token_key(name: str) -> str:
    """Folded tokens in sorted order, for matching regardless of name order."""
    return " ".join(sorted(fold(name).split()))


def search_key(name: str) -> str:
    """Key with marks kept but tone placement, case, composition and spacing canonical."""
    return canonical_name(name).lower()


# Family names (họ): the common ones by frequency (Nguyễn, Trần, Lê, Phạm... about 95 % of
# people between them), then rarer Kinh names and those of the larger ethnic minorities
# (Giàng, Vàng, Thào, Lò...). Some are also given names (Mai, Hà, Hoàng, Giang, Kim): a word
# on this list says "may be the family name", not "is". Words that are mostly middle names
# (Văn, Thị, Minh) are left out even where a few families bear them.
FAMILY_NAMES: tuple[str, ...] = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
    "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Đào", "Lương", "Mai", "Trịnh",
    "Lâm", "Phùng", "Tạ", "Cao", "Hà", "Đoàn", "Vương", "Tô", "Châu", "Kiều", "Thái",
    "Quách", "Lưu", "Tăng", "Từ", "Chu", "Diệp", "Đàm", "Giáp", "Hầu", "Khúc", "Khổng",
    "Kim", "La", "Lạc", "Lại", "Mạc", "Mã", "Mẫn", "Ninh", "Ông", "Phí", "Phó", "Quan",
    "Tiêu", "Tống", "Trình", "Ưng", "Vi", "Viên", "Âu", "Bế", "Hàn", "Lã", "Nghiêm",
    "Nhữ", "Doãn", "Đồng", "Giang", "Thân", "Thạch", "Thiều", "Tôn", "Tiết", "Cù", "Cấn",
    "Chử", "Đậu", "Lục", "Lò", "Sùng", "Hứa", "Triệu", "Nông", "Giàng", "Vàng", "Thào",
    "Mùa", "Lầu", "Hờ", "Sầm",
)  # fmt: skip
# Without marks, as names are compared (two-word families, Tôn Thất or Âu Dương, count by
# their first word).
FOLDED_FAMILY_NAMES: frozenset[str] = frozenset(fold(name) for name in FAMILY_NAMES)
