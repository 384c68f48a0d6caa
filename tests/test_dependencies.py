"""Every imported package is declared, and the lock pins what pyproject.toml asks for."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("provenance", "detectors", "service")


def _project() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, object] = data["project"]
    return project


def _declared() -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in _project()["dependencies"]]  # type: ignore[attr-defined]
    return {canonicalize_name(r.name): r for r in reqs}


def _locked() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    return {
        canonicalize_name(m.group(1)): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.MULTILINE)
    }


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PACKAGES}


def test_every_imported_package_is_a_declared_dependency() -> None:
    owners = packages_distributions()
    declared = _declared()
    missing = []
    for module in sorted(_third_party_imports()):
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        if not dists & set(declared):
            missing.append(f"{module} (from {sorted(dists) or 'no installed distribution'})")
    assert not missing, f"imported but not in [project.dependencies]: {missing}"


def test_the_lock_pins_every_dependency_within_its_declared_range() -> None:
    locked = _locked()
    problems = []
    extras = _project()["optional-dependencies"]["dev"]  # type: ignore[index]
    for spec in [*_declared().values(), *(Requirement(r) for r in extras)]:
        if spec.marker is not None and not spec.marker.evaluate():
            continue
        name = canonicalize_name(spec.name)
        if name not in locked:
            problems.append(f"{spec.name} is not in requirements.lock")
        elif not spec.specifier.contains(locked[name], prereleases=True):
            problems.append(f"{spec.name}=={locked[name]} is outside {spec.specifier}")
    assert not problems, problems


def test_every_locked_pin_carries_a_hash() -> None:
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    entries = [
        e for e in re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text) if re.match(r"[A-Za-z0-9_.\-]+==", e)
    ]
    unhashed = [e.split()[0] for e in entries if "--hash=sha256:" not in e]
    assert len(entries) > 20
    assert not unhashed, unhashed
