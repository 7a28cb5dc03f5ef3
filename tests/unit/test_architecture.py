"""The structure docs/architecture.md draws, checked against the code: which context may
import which, that only the composition root knows the container, and that every module can
be read in one sitting."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import dancu

SRC = Path(dancu.__file__).parent
# Each top-level package or module of dancu, by level: a module may import its own package
# and any of a lower level, never one of its own level or above. ``synth`` generates sample
# data from core's reference data alone; identity and reconciliation both build on the
# register and never on each other. The composition root sits on top.
LEVELS = {
    "core": 0,
    "synth": 1,
    "registry": 2,
    "identity": 3,
    "reconcile": 3,
    "bootstrap": 4,
    "demo": 5,
    "app": 6,
    "cli": 6,
    "__main__": 7,
}
COMPOSITION_ROOT = {"bootstrap", "demo", "app", "cli", "__main__"}
MAX_LINES = 500


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "migrations":
            continue
        yield (rel.parts[0] if len(rel.parts) > 1 else rel.stem), path


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """The dancu packages a module imports (at any place in it, type checking included)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "dancu" and len(parts) > 1:
                yield parts[1], node.lineno


def test_every_package_has_a_level() -> None:
    unknown = {top for top, _path in _modules()} - set(LEVELS) - {"__init__"}
    assert not unknown, f"give {sorted(unknown)} a level here and in docs/architecture.md"


def test_imports_point_down_only() -> None:
    wrong = []
    for top, path in _modules():
        level = LEVELS.get(top, 0)
        for target, line in _imports(path):
            if target == top or target == "__init__" or target not in LEVELS:
                continue
            if LEVELS[target] >= level:
                wrong.append(f"{path.relative_to(SRC)}:{line} imports dancu.{target}")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_no_context_knows_the_composition_root() -> None:
    wrong = [
        f"{path.relative_to(SRC)}:{line}"
        for top, path in _modules()
        if top not in COMPOSITION_ROOT
        for target, line in _imports(path)
        if target in COMPOSITION_ROOT
    ]
    assert not wrong, "contexts reach their needs through their deps.py:\n" + "\n".join(wrong)


@pytest.mark.parametrize("context", ["core", "registry", "identity", "reconcile"])
def test_every_context_states_its_needs(context: str) -> None:
    assert (SRC / context / "deps.py").is_file()


def test_modules_are_readable_in_one_sitting() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for _top, path in _modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
