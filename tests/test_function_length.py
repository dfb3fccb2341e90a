"""No function of the product is longer than 60 lines: a longer one holds more than one idea."""

from __future__ import annotations

import ast
from pathlib import Path

MAX_LINES = 60
OPERATOR = Path(__file__).resolve().parent.parent / "operator"


def long_functions(root: Path, limit: int = MAX_LINES) -> list[str]:
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_longer_than_sixty_lines() -> None:
    assert long_functions(OPERATOR) == []


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def too_long() -> None:\n{body}\n")
    assert long_functions(tmp_path) == [f"long.py:1 too_long ({MAX_LINES + 1} lines)"]
