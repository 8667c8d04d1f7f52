"""No function in src/ longer than 60 lines (from its ``def`` to its last line; decorators and the
docstring count, so a long docstring is a hint to split too).

Prints each function over the limit as ``path:line name (N lines)`` and exits 1; the functions in
EXCEPTIONS (written before the check) are reported only when they grow. Split one and take it off
the list; never add one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMIT = 60
ROOT = Path(__file__).resolve().parent.parent
# path relative to src/synthroom, function name -> its body's length when the tree was formatted
EXCEPTIONS: dict[tuple[str, str], int] = {}


def long_functions(package: Path) -> list[tuple[str, int, str, int]]:
    """``(relative path, line, name, length)`` of every function longer than LIMIT."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if "migrations/versions" in path.as_posix():
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    body = body[1:]  # the docstring
                length = (node.end_lineno or node.lineno) - body[0].lineno + 1
                if length > LIMIT:
                    found.append((path.relative_to(package).as_posix(), node.lineno, node.name, length))
    return found


def main() -> int:
    package = ROOT / "src" / "synthroom"
    faults = [
        (p, line, name, n) for p, line, name, n in long_functions(package) if n > EXCEPTIONS.get((p, name), LIMIT)
    ]
    for path, line, name, length in faults:
        print(f"src/synthroom/{path}:{line} {name} ({length} lines; the limit is {LIMIT}): split it")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
