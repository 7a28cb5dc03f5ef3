"""The officer's search of the register, as one statement shared by the synchronous read
(``RegistryReads.search``, any database) and the async PostgreSQL read
(``PersonLookup.search``): the same filters, order, page and audit entry on both paths.

By personal ID or old CMND number (any spacing), or by name: any case, with or without
diacritics, any tone-mark placement, any word order, whole words; narrowed by date or year of
birth and by today's province or commune, within the officer's area. The name as typed
(folded, in the typed word order) comes first, then the other matches in name order, each by
birth date; on a page, names typed exactly with their marks come first.

On PostgreSQL the name's words are matched as an array (``string_to_array(name_key, ' ') @>
ARRAY[...]``) served by the GIN index of migration 0008; SQLite matches them with LIKE
patterns. A common full name ("Nguyễn Văn Hùng", thousands of people in a national register)
is collected through that index and sorted, rather than found by walking the whole name order
(decision 0007)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, bindparam, cast, func, literal_column, or_
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import ARRAY

from dancu.core import ids
from dancu.core.access import OfficerContext
from dancu.core.audit import Entry
from dancu.core.errors import Invalid
from dancu.core.names import fold, search_key
from dancu.core.units import UnitDirectory
from dancu.registry import schemas as s
from dancu.registry.models import PersonCurrent, PersonIdentifier

PAGE_SIZE = 20
NOTHING_TO_SEARCH = "type a name or a number to search"

# What a result shows, in this order (``page_of`` reads rows as tuples of these).
COLUMNS = (
    PersonCurrent.personal_id,
    PersonCurrent.full_name,
    PersonCurrent.birth_date,
    PersonCurrent.sex,
    PersonCurrent.status,
    PersonCurrent.province_code,
    PersonCurrent.commune_code,
)

# The expression of the GIN index ``ix_person_current_name_words`` (migration 0008): the
# separator is a literal so that the planner recognises the indexed expression.
NAME_WORDS = func.string_to_array(PersonCurrent.name_key, literal_column("' '"), type_=ARRAY(Text))
# The same words from an expression no index serves, so that the planner does not add the
# words' index to a birth date's few dozen people.
UNINDEXED_WORDS = func.string_to_array(
    PersonCurrent.name_key.op("||")(literal_column("''")), literal_column("' '"), type_=ARRAY(Text)
)


Rows = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class SearchQuery:
    """The search's parameters, in the order of ``RegistryReads.search``'s."""

    query: str = ""
    birth_date: date | None = None
    birth_year: int | None = None
    page: int = 1
    province_code: str | None = None
    commune_code: str | None = None

    def normalised(self) -> SearchQuery:
        return SearchQuery(
            self.query.strip(),
            self.birth_date,
            self.birth_year,
            max(self.page, 1),
            self.province_code,
            self.commune_code,
        )


def _whole_word(i: int) -> ColumnElement[bool]:
    """``name_key`` holds the ``i``-th word as a whole word, as LIKE patterns (SQLite); the
    values are ``w{i}``, ``w{i}_start``, ``w{i}_end`` and ``w{i}_inside`` (``_like_values``)."""
    key = PersonCurrent.name_key
    return or_(
        key == bindparam(f"w{i}"),
        key.like(bindparam(f"w{i}_start"), escape="\\"),
        key.like(bindparam(f"w{i}_end"), escape="\\"),
        key.like(bindparam(f"w{i}_inside"), escape="\\"),
    )


def _like_values(i: int, token: str) -> dict[str, str]:
    t = token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {
        f"w{i}": token,
        f"w{i}_start": f"{t} %",
        f"w{i}_end": f"% {t}",
        f"w{i}_inside": f"% {t} %",
    }


@dataclass(frozen=True)
class Shape:
    """What the statement looks like, apart from its values: one statement per shape is
    built, and compiled for the async path, once."""

    dialect: str
    key: str  # "number", "name" or "" (by birth date or year only)
    words: int  # SQLite: how many name words (one LIKE group each)
    born: str  # "date", "year" or ""
    province: bool
    commune: bool
    scope: str  # "province", "commune" or "" (the whole country)


def bind(ctx: OfficerContext, q: SearchQuery, dialect: str) -> tuple[Shape, dict[str, Any]]:
    """The statement's shape and values for ``q`` (``normalised``), as ``ctx`` may search;
    ``Invalid`` (field ``q``) when there is nothing to search for."""
    values: dict[str, Any] = {
        "limit": PAGE_SIZE + 1,  # one more than a page, to tell whether another follows
        "offset": (q.page - 1) * PAGE_SIZE,
    }
    key, words = "", 0
    digits = re.sub(r"\s", "", q.query)
    if digits.isdigit() and len(digits) in (9, 12):
        key, values["number"] = "number", digits
    elif q.query:
        tokens = fold(q.query).split()
        if not tokens:
            raise Invalid(NOTHING_TO_SEARCH, "q")
        key, values["typed"] = "name", " ".join(tokens)
        if dialect == "postgresql":
            values["words"] = sorted(set(tokens))
        else:
            words = len(tokens)
            for i, token in enumerate(tokens):
                values.update(_like_values(i, token))
    elif q.birth_date is None and q.birth_year is None:
        raise Invalid(NOTHING_TO_SEARCH, "q")
    born = ""
    if q.birth_date is not None:
        born, values["born"] = "date", q.birth_date
    elif q.birth_year is not None:
        born = "year"
        values["born_from"], values["born_to"] = (
            date(q.birth_year, 1, 1),
            date(q.birth_year, 12, 31),
        )
    if q.province_code:
        values["province"] = q.province_code
    if q.commune_code:
        values["commune"] = q.commune_code
    scope = ""
    if ctx.province_code and ctx.role.value != "ministry_admin":
        scope, values["scope_province"] = "province", ctx.province_code
        if ctx.role.value == "commune_officer":
            scope, values["scope_commune"] = "commune", ctx.commune_code
    shape = Shape(dialect, key, words, born, bool(q.province_code), bool(q.commune_code), scope)
    return shape, values


@functools.cache
def statement(shape: Shape) -> Rows:
    """The page's rows for statements of ``shape`` (values as ``bind`` gives them)."""
    stmt: Rows = sql_select(*COLUMNS)
    order: list[Any] = []
    if shape.key == "number":
        matches = sql_select(PersonIdentifier.person_id).where(
            PersonIdentifier.value == bindparam("number")
        )
        stmt = stmt.where(PersonCurrent.person_id.in_(matches))
    elif shape.key == "name":
        if shape.dialect == "postgresql":
            words = cast(bindparam("words", type_=ARRAY(Text)), ARRAY(Text))
            if shape.born != "date":  # the words' index, then a sort of what it found
                stmt = stmt.where(NAME_WORDS.op("@>")(words))
            else:  # the date's index, then the words as a filter
                stmt = stmt.where(UNINDEXED_WORDS.op("@>")(words))
        else:
            for i in range(shape.words):
                stmt = stmt.where(_whole_word(i))
        # The name as typed (folded, in its word order) before other orders and longer names.
        # This also keeps PostgreSQL from walking the name index in order, which for a common
        # name passes over most of the register before it has a page.
        order.append(PersonCurrent.name_key != bindparam("typed"))
    if shape.born == "date":
        stmt = stmt.where(PersonCurrent.birth_date == bindparam("born"))
    elif shape.born == "year":
        stmt = stmt.where(
            PersonCurrent.birth_date >= bindparam("born_from"),
            PersonCurrent.birth_date <= bindparam("born_to"),
        )
    if shape.province:
        stmt = stmt.where(PersonCurrent.province_code == bindparam("province"))
    if shape.commune:
        stmt = stmt.where(PersonCurrent.commune_code == bindparam("commune"))
    # Only people living (today) in the officer's area; the ministry sees the country.
    if shape.scope:
        stmt = stmt.where(PersonCurrent.province_code == bindparam("scope_province"))
    if shape.scope == "commune":
        stmt = stmt.where(PersonCurrent.commune_code == bindparam("scope_commune"))
    order += [PersonCurrent.name_key, PersonCurrent.birth_date, PersonCurrent.person_id]
    return stmt.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))


def page_of(rows: Iterable[Sequence[Any]], q: SearchQuery, units: UnitDirectory) -> s.SearchPage:
    """The answer from the statement's rows (tuples of ``COLUMNS``)."""
    found = list(rows)
    wanted = search_key(q.query)
    found.sort(key=lambda r: search_key(r[1]) != wanted)  # stable: exact names first
    items = []
    for pid, name, born, sex, status, province, commune in found[:PAGE_SIZE]:
        unit = units.get("2025", "commune", commune)
        items.append(
            s.PersonSummary(
                personal_id=pid,
                full_name=name,
                birth_date=born,
                sex=sex,
                status=status,
                province_code=province,
                commune_code=commune,
                commune_name=unit.name if unit else "",
            )
        )
    return s.SearchPage(
        items=items, page=q.page, page_size=PAGE_SIZE, has_more=len(found) > PAGE_SIZE
    )


def audit_entry(ctx: OfficerContext, q: SearchQuery, found: int) -> Entry:
    """The search as the audit records it: the query masked, and how many it found."""
    detail = f"{ids.mask_text(q.query)!r} -> {found} results"
    return Entry(ctx.actor(None), "person.search", "person:0", detail)
