"""The dependency direction of DESIGN.md, enforced: crawler, classifier and demo never reach
into pipeline; db reaches into nothing but itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"crawler", "classifier", "pipeline", "db", "demo"}
# What each package may import from the project besides itself.
ALLOWED = {
    "crawler": {"db.records"},
    "classifier": {"db.records"},
    # the mall builds its catalog from the same idx reader the classifier trains from
    "demo": {"db.records", "classifier.fashion_mnist", "classifier.errors"},
    "db": set(),
}


def project_imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in PROJECT_PACKAGES:
                    found.add((str(path.relative_to(ROOT)), name))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package):
    bad = sorted(
        (path, name)
        for path, name in project_imports(package)
        if name.split(".")[0] != package and name not in ALLOWED[package]
    )
    assert bad == []


def test_the_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    (tmp_path / "crawler").mkdir()
    (tmp_path / "crawler" / "bad.py").write_text("from pipeline.cli import main\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert project_imports("crawler") == {("crawler/bad.py", "pipeline.cli")}
