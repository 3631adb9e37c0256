"""The front ends use the core's public seam (`Orchestrator`, `JobHandle`, the tally, the
records), never the journal's storage, its locks or the in-process bus (issue 7)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRONT_ENDS = {
    "orchestrator.cli": ROOT / "orchestrator" / "cli",
    "orchestrator.notebook": ROOT / "orchestrator" / "notebook",
    "tui": ROOT / "tui",
}
INSIDE_THE_CORE = ("orchestrator.journal", "orchestrator.locks", "orchestrator.bus")


def _imports(package: str, path: Path) -> list[tuple[str, str]]:
    """(module file, absolute name imported) for every import in `path`'s package."""
    found = []
    for source in sorted(path.rglob("*.py")):
        parts = source.relative_to(path).with_suffix("").parts
        module = ".".join((package, *parts)).removesuffix(".__init__")
        here = module if source.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                found += [(str(source), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                name = node.module or ""
                full = f"{base}.{name}".strip(".") if node.level else name
                found.append((str(source), full))
                found += [(str(source), f"{full}.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("package", sorted(FRONT_ENDS))
def test_a_front_end_imports_nothing_of_the_journal_its_locks_or_the_bus(package: str) -> None:
    imports = _imports(package, FRONT_ENDS[package])
    assert imports, "the walk found the package's imports"
    inside = [
        (source, name)
        for source, name in imports
        if any(name == core or name.startswith(f"{core}.") for core in INSIDE_THE_CORE)
    ]
    assert inside == []


def test_the_check_sees_an_import_from_inside_the_core(tmp_path: Path) -> None:
    package = tmp_path / "front"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "view.py").write_text("from ..journal.store import Store\nimport orchestrator.bus\n")
    names = [name for _, name in _imports("orchestrator.front", package)]
    assert "orchestrator.journal.store" in names and "orchestrator.bus" in names
