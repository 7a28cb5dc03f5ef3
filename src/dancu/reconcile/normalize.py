"""Vietnamese normalisation as SQL functions, the same on DuckDB and on Spark.

The pipeline's steps are SQL; the rules that make "NGUYEN VAN HOA", "Nguyễn Văn Hòa" and
"Nguyễn Văn Hoà" comparable live here as a handful of functions (``dc_*``) that each engine
defines before the steps run: DuckDB as macros, Spark (4.0+) as SQL functions. Their bodies use
only ``lower``, ``translate``, ``regexp_replace``, ``split`` and date parsing, so a national run
on Spark normalises exactly like a laptop run on DuckDB (a test compares the two row by row).

Inputs are NFC: the extract readers and the register snapshot normalise every value to NFC
before the pipeline sees it, so one table of precomposed letters is enough here.

- ``dc_fold(x)``: no marks, Đ→D, lower case, anything but letters and digits a single space
  ("Đặng  Thị-Hoà" → "dang thi hoa"); NULL for an empty result. As ``core.names.fold``.
- ``dc_sig(x)``: a key that keeps the marks but not where the tone mark sits: the name
  without tone marks (vowel qualities kept: â ă ê ô ơ ư đ) and, after ``|``, each syllable's
  tone as a digit. "Hòa" and "Hoà" (different strings even in NFC) have the same key; "Hoa",
  "Hoà" and "Hóa" do not.
- ``dc_words(x)``: the lower-case words of a name with their marks, single-spaced ("Đặng
  Thị-Huệ" → "đặng thị huệ"), what the keys are built from.
- ``dc_given_first(w)``: whether a name's words look written given name first: the last is
  a family name (``core.names.FAMILY_NAMES``) and the first is not ("hùng văn nguyễn",
  "hung van nguyen"), compared with their marks when the name has any.
- ``dc_family_first(w)``: the words with the first and the last swapped ("hùng văn nguyễn" →
  "nguyễn văn hùng"), the Vietnamese order of a name written given name first. The pipeline
  applies it to every name ``dc_given_first`` picks, the register's as well as the
  extract's, so a name both write alike keeps agreeing whatever its words are.
- ``dc_tokens(f)``: the words of a folded name sorted, for names written in another order.
- ``dc_variant(f)``: the same with Huỳnh read as Hoàng and Võ as Vũ (one Hán character each,
  黃 and 武; the southern and northern readings — reference/vietnam.md §6).
- ``dc_marked(x)``: whether a name carries any Vietnamese mark at all (a name written without
  them is a difference to correct, unlike case or composition).
- ``dc_first(f)`` / ``dc_last(f)``: the first and last word of a folded name (family name and
  given name in Vietnamese order).
- ``dc_digits(x)``: the digits of a number written with spaces, dots or dashes.
- ``dc_date(x)``: a full date in the formats agencies use (``dd/mm/yyyy``, ``d/m/yyyy``,
  ``dd-mm-yyyy``, ``dd.mm.yyyy``, ``yyyy-mm-dd``, ``yyyy/mm/dd``, ``yyyymmdd``, and
  ``d/m/yy`` with the latest century that does not put the date after today) or NULL;
  ``dc_year(x)``: its year, also for a year given alone.
- ``dc_sex(x)``: ``M``, ``F`` or NULL from Nam/Nữ, M/F, 1/0 and the like (fields.SEX_VALUES).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from dancu.core.names import FAMILY_NAMES, FOLDED_FAMILY_NAMES
from dancu.reconcile.fields import SEX_VALUES

Dialect = Literal["duckdb", "spark"]

# Tone marks as combining characters, and the digit each becomes in dc_sig.
_TONES: Final = {"\u0301": "1", "\u0300": "2", "\u0309": "3", "\u0303": "4", "\u0323": "5"}
_VOWELS: Final = "aăâeêioôơuưy"


def _letters() -> tuple[str, str, str, list[str]]:
    """(marked letters, their folded forms, their toneless forms, their tone digits or ""),
    lower case, for every precomposed Vietnamese vowel with a tone or a quality mark, and đ."""
    marked: list[str] = []
    folded: list[str] = []
    toneless: list[str] = []
    tones: list[str] = []
    for vowel in _VOWELS:
        base = unicodedata.normalize("NFD", vowel)[0]
        for mark, digit in [("", ""), *_TONES.items()]:
            letter = unicodedata.normalize("NFC", vowel + mark)
            if letter == base:
                continue
            marked.append(letter)
            folded.append(base)
            toneless.append(vowel)
            tones.append(digit)
    marked.append("đ")
    folded.append("d")
    toneless.append("đ")
    tones.append("")
    return "".join(marked), "".join(folded), "".join(toneless), tones


MARKED, FOLDED, TONELESS, TONE_OF = _letters()
# Upper-case letters are lowered first (lower() knows Vietnamese capitals, Đ included).

# The tone digit of each toned letter; letters with no tone map to nothing. translate()
# deletes the characters of its "from" string beyond the length of its "to" string, so the
# toned letters come first, then everything to delete.
_TONED = "".join(m for m, t in zip(MARKED, TONE_OF, strict=True) if t)
_TONED_DIGITS = "".join(t for t in TONE_OF if t)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Function:
    """One dc_* function: its parameter, what it returns (Spark needs the type), and its body
    in each dialect."""

    name: str
    returns: str
    duckdb: str
    spark: str

    def body(self, dialect: Dialect) -> str:
        return self.duckdb if dialect == "duckdb" else self.spark


def _regexp_all(dialect: Dialect, value: str, pattern: str, replacement: str) -> str:
    """regexp_replace of every match: DuckDB needs the 'g' flag, Spark replaces all anyway
    (and its pattern is a Java regex inside a SQL string, so backslashes are doubled)."""
    if dialect == "duckdb":
        return f"regexp_replace({value}, {_sql_string(pattern)}, {_sql_string(replacement)}, 'g')"
    java = _sql_string(pattern.replace("\\", "\\\\"))
    return f"regexp_replace({value}, {java}, {_sql_string(replacement)})"


def _fold(d: Dialect) -> str:
    lowered = f"translate(lower(x), {_sql_string(MARKED)}, {_sql_string(FOLDED)})"
    spaced = _regexp_all(d, lowered, "[^a-z0-9]+", " ")
    return f"nullif(trim({spaced}), '')"


def _sig(d: Dialect) -> str:
    # The lower-case name with its marks, words single-spaced: the tones are read from it
    # syllable by syllable, so a syllable without a tone stays visible as an empty place.
    words = _regexp_all(d, "lower(x)", f"[^a-z0-9{MARKED}]+", " ")
    words = f"trim({words})"
    quality = f"translate({words}, {_sql_string(MARKED)}, {_sql_string(TONELESS)})"
    digits = f"translate({words}, {_sql_string(_TONED)}, {_sql_string(_TONED_DIGITS)})"
    digits = _regexp_all(d, digits, "[^1-5 ]", "")
    return f"nullif({quality} || '|' || {digits}, '|')"


def _words(d: Dialect) -> str:
    return f"trim({_regexp_all(d, 'lower(x)', f'[^a-z0-9{MARKED}]+', ' ')})"


def _given_first(d: Dialect) -> str:
    # With marks where the name has them: folded, common given names are family names too
    # (Quân/Quan, Hân/Hàn, Đông/Đồng, Tú/Từ).
    def listed(names: set[str]) -> str:
        return ", ".join(_sql_string(n) for n in sorted(names))

    marked = listed({n.lower() for n in FAMILY_NAMES if " " not in n})
    folded = listed(set(FOLDED_FAMILY_NAMES))
    first, last = (
        ("split_part(x, ' ', 1)", "string_split(x, ' ')[-1]")
        if d == "duckdb"
        else ("split(x, ' ')[0]", "element_at(split(x, ' '), -1)")
    )
    return (
        f"x LIKE '% %' AND CASE WHEN dc_marked(x) "
        f"THEN {last} IN ({marked}) AND {first} NOT IN ({marked}) "
        f"ELSE {last} IN ({folded}) AND {first} NOT IN ({folded}) END"
    )


def _family_first(d: Dialect) -> str:
    # The middle words, however many, stay as they are: "(?:\S+ )*" matches them all.
    pattern = r"^(\S+) ((?:\S+ )*)(\S+)$"
    if d == "duckdb":
        return f"regexp_replace(x, {_sql_string(pattern)}, '\\3 \\2\\1')"
    java = _sql_string(pattern.replace("\\", "\\\\"))
    return f"regexp_replace(x, {java}, '$3 $2$1')"


def _sorted_words(d: Dialect, folded: str) -> str:
    if d == "duckdb":
        return f"array_to_string(list_sort(string_split({folded}, ' ')), ' ')"
    return f"array_join(array_sort(split({folded}, ' ')), ' ')"


def _variant(d: Dialect) -> str:
    folded = "x"
    for variant, standard in (("huynh", "hoang"), ("vo", "vu")):
        folded = _regexp_all(d, folded, f"\\b{variant}\\b", standard)
    return _sorted_words(d, folded)


def _date(d: Dialect) -> str:
    value = "trim(x)"
    if d == "duckdb":
        formats = ", ".join(
            _sql_string(f) for f in ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d", "%Y/%m/%d")
        )
        parsed = f"try_strptime({value}, [{formats}])"
        compact = f"try_strptime({value}, '%Y%m%d')"
        # A two-digit year: DuckDB reads 00-68 as 20xx; a date after today is a century back.
        short = f"try_strptime({value}, ['%d/%m/%y', '%d-%m-%y', '%d.%m.%y'])"
        short = (
            f"CASE WHEN {short} > current_date THEN {short} - INTERVAL 100 YEAR ELSE {short} END"
        )
        return (
            f"CAST(CASE WHEN regexp_full_match({value}, '[0-9]{{8}}') THEN {compact} "
            f"WHEN regexp_full_match({value}, '[0-9]{{1,2}}[/.-][0-9]{{1,2}}[/.-][0-9]{{4}}"
            f"|[0-9]{{4}}[/-][0-9]{{1,2}}[/-][0-9]{{1,2}}') THEN {parsed} "
            f"WHEN regexp_full_match({value}, '[0-9]{{1,2}}[/.-][0-9]{{1,2}}[/.-][0-9]{{2}}') "
            f"THEN {short} END AS DATE)"
        )
    patterns = ("d/M/yyyy", "d-M-yyyy", "d.M.yyyy", "yyyy-M-d", "yyyy/M/d")
    parsed = "coalesce(" + ", ".join(f"try_to_date({value}, '{f}')" for f in patterns) + ")"
    # Spark reads yy as 2000-2099; a date after today is a century back (as on DuckDB).
    short = (
        "coalesce("
        + ", ".join(f"try_to_date({value}, '{f}')" for f in ("d/M/yy", "d-M-yy", "d.M.yy"))
        + ")"
    )
    short = f"CASE WHEN {short} > current_date() THEN add_months({short}, -1200) ELSE {short} END"
    return (
        f"CASE WHEN {value} RLIKE '^[0-9]{{8}}$' THEN try_to_date({value}, 'yyyyMMdd') "
        f"WHEN {value} RLIKE '^([0-9]{{1,2}}[/.-][0-9]{{1,2}}[/.-][0-9]{{4}}"
        f"|[0-9]{{4}}[/-][0-9]{{1,2}}[/-][0-9]{{1,2}})$' THEN {parsed} "
        f"WHEN {value} RLIKE '^[0-9]{{1,2}}[/.-][0-9]{{1,2}}[/.-][0-9]{{2}}$' THEN {short} END"
    )


def _year(d: Dialect) -> str:
    if d == "duckdb":
        only = "regexp_full_match(trim(x), '[0-9]{4}')"
    else:
        only = "trim(x) RLIKE '^[0-9]{4}$'"
    return (
        f"CASE WHEN {only} THEN CAST(trim(x) AS INTEGER) ELSE CAST(year(dc_date(x)) AS INTEGER) END"
    )


def _sex(d: Dialect) -> str:
    # A handful of spellings: compared as written (lower case, with or without marks) rather
    # than folded, which would cost a translate() per row for a one-letter answer.
    def spellings(sex: str) -> str:
        folded = [k for k, v in SEX_VALUES.items() if v == sex]
        marked = {"nu": "nữ", "gai": "gái"}
        return ", ".join(
            _sql_string(s) for s in folded + [marked[k] for k in folded if k in marked]
        )

    value = "lower(trim(x))"
    male, female = spellings("M"), spellings("F")
    return f"CASE WHEN {value} IN ({male}) THEN 'M' WHEN {value} IN ({female}) THEN 'F' END"


def _functions() -> tuple[Function, ...]:
    def both(name: str, returns: str, build: object) -> Function:
        assert callable(build)
        return Function(name, returns, build("duckdb"), build("spark"))

    return (
        both("dc_fold", "STRING", _fold),
        both("dc_sig", "STRING", _sig),
        both("dc_words", "STRING", _words),
        both("dc_family_first", "STRING", _family_first),
        Function(
            "dc_tokens",
            "STRING",
            _sorted_words("duckdb", "dc_fold(x)"),
            _sorted_words("spark", "dc_fold(x)"),
        ),
        both("dc_variant", "STRING", _variant),
        Function("dc_first", "STRING", "split_part(x, ' ', 1)", "split(x, ' ')[0]"),
        Function("dc_last", "STRING", "string_split(x, ' ')[-1]", "element_at(split(x, ' '), -1)"),
        Function(
            "dc_digits",
            "STRING",
            "nullif(regexp_replace(x, '[^0-9]', '', 'g'), '')",
            "nullif(regexp_replace(x, '[^0-9]', ''), '')",
        ),
        Function(
            "dc_marked",
            "BOOLEAN",
            f"translate(lower(x), {_sql_string(MARKED)}, {_sql_string(FOLDED)}) <> lower(x)",
            f"translate(lower(x), {_sql_string(MARKED)}, {_sql_string(FOLDED)}) <> lower(x)",
        ),
        both("dc_given_first", "BOOLEAN", _given_first),
        both("dc_date", "DATE", _date),
        both("dc_year", "INT", _year),
        both("dc_sex", "STRING", _sex),
    )


FUNCTIONS: Final[tuple[Function, ...]] = _functions()


def definitions(dialect: Dialect) -> list[str]:
    """The statements that define every dc_* function in ``dialect``, in dependency order."""
    out = []
    for f in FUNCTIONS:
        if dialect == "duckdb":
            out.append(f"CREATE OR REPLACE MACRO {f.name}(x) AS {f.duckdb}")
        else:
            out.append(
                f"CREATE OR REPLACE TEMPORARY FUNCTION {f.name}(x STRING) "
                f"RETURNS {f.returns} RETURN {f.spark}"
            )
    return out
