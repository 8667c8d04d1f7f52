"""The dependency files agree with pyproject.toml's ranges: constraints-lowest.txt (what
`.ci/bounds lowest` installs) holds every dependency at exactly its range's lower bound, and
constraints.txt (what CI and the README install) pins each one inside its range. Which versions
work is `.ci/bounds`' job (bench/RESULTS.md); this only keeps the files from drifting apart."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
EXTRAS_IN_LOWEST = ("test", "postgres")  # the extras constraints-lowest.txt resolves (not lint, spark)


def _requirements(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [d for e in extras for d in project["optional-dependencies"][e]]
    return [Requirement(line) for line in lines]


def _pins(name: str) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{name}: {line!r} is not an exact pin"
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _lower_bound(req: Requirement) -> Version:
    (low,) = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return low


def test_lowest_constraints_hold_every_dependency_at_its_lower_bound():
    lowest = _pins("constraints-lowest.txt")
    for req in _requirements(EXTRAS_IN_LOWEST):
        name = canonicalize_name(req.name)
        assert name in lowest, f"{req.name} is missing from constraints-lowest.txt: regenerate it (see its header)"
        assert lowest[name] == _lower_bound(req), (
            f"constraints-lowest.txt has {req.name}=={lowest[name]}, but its lower bound is {_lower_bound(req)}: "
            "regenerate it (see its header)"
        )


def test_lowest_constraints_keep_the_floors():
    lowest = _pins("constraints-lowest.txt")
    for line in (ROOT / ".ci/bounds-floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            assert lowest[canonicalize_name(req.name)] in req.specifier, line


def test_ci_constraints_pin_every_dependency_inside_its_range():
    pins = _pins("constraints.txt")
    for req in _requirements(("test", "postgres", "lint", "spark")):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} has no pin in constraints.txt"
        assert pins[name] in req.specifier, f"constraints.txt pins {req.name}=={pins[name]}, outside {req.specifier}"
