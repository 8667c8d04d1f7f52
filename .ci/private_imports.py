"""No module of src/synthroom imports another module's private names (``from .x import _name``):
what one module shares with another is public, documented and typed. Prints each import of a
private name across modules and exits 1; EXCEPTIONS were there before the check (make the name
public, or move the code, and take its line off; never add one)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXCEPTIONS: set[tuple[str, str]] = set()  # (importing module, imported name) that predate the check


def private_imports(package: Path) -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("synthroom")):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append((rel, node.lineno, alias.name))
    return found


def main() -> int:
    faults = [f for f in private_imports(ROOT / "src" / "synthroom") if (f[0], f[2]) not in EXCEPTIONS]
    for rel, line, name in faults:
        print(f"src/synthroom/{rel}:{line} imports the private name {name}: make it public or keep it in its module")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
