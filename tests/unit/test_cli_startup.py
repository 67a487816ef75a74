"""``qrie --help`` and the read-only commands start fast: importing the CLI loads neither moto nor
the local runtime (nor boto3), and its modules import each other without a cycle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ORCHESTRATION = Path(__file__).parents[2] / "orchestration"
HEAVY = ("moto", "orchestration.runtime", "orchestration.simulated_org", "boto3")


def test_importing_the_cli_loads_no_emulation_and_no_sdk():
    probe = (
        "import json, sys\n"
        "import orchestration.cli\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ORCHESTRATION.parent
    )
    assert json.loads(result.stdout) == []


def cli_imports(path: Path) -> set[str]:
    """The ``orchestration.cli*`` modules a module imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "orchestration":
            found |= {f"orchestration.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {m for m in found if m.startswith("orchestration.cli")}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None."""

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        for imported in sorted(graph.get(module, ())):
            found = visit(imported, [*path, module])
            if found:
                return found
        return None

    return next((c for m in sorted(graph) if (c := visit(m, []))), None)


def test_the_cycle_check_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_cli_modules_import_each_other_without_a_cycle():
    graph = {f"orchestration.{p.stem}": cli_imports(p) for p in ORCHESTRATION.glob("cli*.py")}
    assert "orchestration.cli_common" in graph["orchestration.cli_events"]  # the graph is read
    assert cycle(graph) is None
