"""Extract translatable messages from src/ and merge them into the Vietnamese catalog.

``python tools/messages.py`` (``make messages``) adds new message ids to
``src/dancu/core/locale/vi/LC_MESSAGES/messages.po`` with an empty translation and drops ids
no longer used; translate the empty ones by hand. ``extract()`` is also what
tests/unit/core/test_i18n.py checks the catalog against.

Besides ``_``/``N_``/``ngettext`` in code and templates, the messages of the domain errors
(``Invalid("...")`` and friends, ``refuse(Kind, "code", "...")``) and of the input validators
(``ValueError("...")``) are extracted, because the web forms show them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dancu"
CATALOG = SRC / "core" / "locale" / "vi" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {
    "_": None,
    "N_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "Invalid": None,
    "NotFound": None,
    "Forbidden": None,
    "Conflict": None,
    "Unauthorized": None,
    "LoginFailed": None,
    "ValueError": None,
    "InvalidPersonalID": (2,),
}
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**.py", "python"),
]


def extract() -> Catalog:
    catalog = Catalog(locale="vi", project="dancu")
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(SRC),
        METHODS,
        keywords=KEYWORDS,
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        if message and (not isinstance(message, tuple) or message[0]):
            catalog.add(message, None, [(filename, 0)])
    for filename, message in _refusals():
        catalog.add(message, None, [(filename, 0)])
    return catalog


def _refusals() -> list[tuple[str, str]]:
    """Messages of ``refuse(Kind, "code", "message", field)`` calls (identity's coded
    errors), read from the syntax tree: Babel's tokenizer loses some of these calls."""
    import ast

    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "refuse"
                and len(node.args) >= 3
                and isinstance(node.args[2], ast.Constant)
                and isinstance(node.args[2].value, str)
            ):
                found.append((str(path.relative_to(SRC)), node.args[2].value))
    return found


def update() -> list[str]:
    """Merge the extracted ids into the catalog; returns the ids still untranslated."""
    with CATALOG.open("rb") as f:
        current = read_po(f, locale="vi")
    header = CATALOG.read_text(encoding="utf-8").split('msgid ""', 1)[0]
    current.update(extract(), no_fuzzy_matching=True)
    current.obsolete.clear()
    for message in current:
        message.locations = []
    body = _render(current)
    CATALOG.write_text(header + body[body.index('msgid ""') :], encoding="utf-8")
    return [str(m.id) for m in current if m.id and not _translated(m.string)]


def _translated(value: object) -> bool:
    if isinstance(value, tuple | list):
        return all(value)
    return bool(value)


def _render(catalog: Catalog) -> str:
    import io

    buf = io.BytesIO()
    write_po(buf, catalog, width=100, sort_output=True, omit_header=False, no_location=True)
    return buf.getvalue().decode("utf-8")


if __name__ == "__main__":
    left = update()
    for message_id in left:
        print(f"untranslated: {message_id}")
    sys.exit(1 if left else 0)
