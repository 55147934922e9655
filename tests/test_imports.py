"""The project's modules import each other without circles, and the trainer stays pure.

Every `import` counts, at module level or inside a function (a deferred import that closes a
circle is still a circle); only imports under `if TYPE_CHECKING:` (never run) are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("trainer", "server")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return "collapse_lab." + ".".join(p for p in rel.parts if p != "__init__")


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n.startswith("collapse_lab.")}
    return out


def graph() -> dict[str, set[str]]:
    mods = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    return {m: {i for i in project_imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_no_import_circles():
    g = graph()
    circles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for n in sorted(g[m]):
            if state.get(n) == "open":
                circles.append(" → ".join(stack[stack.index(n):] + [m, n]))
            elif n not in state:
                visit(n, stack + [m])
        state[m] = "done"

    for m in sorted(g):
        if m not in state:
            visit(m, [])
    assert not circles, circles


def test_trainer_never_imports_the_server():
    g = graph()
    bad = {m: sorted(i for i in deps if i.startswith("collapse_lab.server"))
           for m, deps in g.items() if m.startswith("collapse_lab.trainer")}
    assert not any(bad.values()), bad
    for path in (ROOT / "trainer").rglob("*.py"):
        text = path.read_text()
        assert "import fastapi" not in text and "from fastapi" not in text, path
        assert "websockets" not in text, path

