"""No function in ``node/`` is longer than ``MAX_FUNCTION_LINES`` unless its docstring says
why (issue 17; docs/architecture.md, "Layers").

A function's length counts from its ``def`` line to its last line (decorators aside); one
whose docstring has a line starting with ``Long because`` may be longer. Nested functions
count on their own and inside the function that holds them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "node"

MAX_FUNCTION_LINES = 60
WHY_LONG = "Long because"


def compute_long_functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """Return ``(name, line, length)`` of each function of ``tree`` over the limit whose
    docstring does not say why."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        doc = ast.get_docstring(node) or ""
        explained = any(line.strip().startswith(WHY_LONG) for line in doc.splitlines())
        if length > MAX_FUNCTION_LINES and not explained:
            found.append((node.name, node.lineno, length))
    return found


def test_compute_long_functions_honours_the_limit_and_the_reason() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    short = f"def short():\n{body}\n"
    long = f"def long():\n{body}\n    x = 0\n"
    why = f'def why():\n    """Do it.\n\n    Long because: a table."""\n{body}\n'
    assert compute_long_functions(ast.parse(short)) == []
    assert compute_long_functions(ast.parse(long)) == [("long", 1, MAX_FUNCTION_LINES + 1)]
    assert compute_long_functions(ast.parse(why)) == []


def test_no_function_in_node_is_long_without_saying_why() -> None:
    long = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for path in sorted(NODE.rglob("*.py"))
        for name, line, length in compute_long_functions(ast.parse(path.read_text()))
    ]
    assert long == [], f"over {MAX_FUNCTION_LINES} lines, no 'Long because' in the docstring"
