"""The import contracts of pyproject.toml (`make lint` runs them too): product packages never
import the tooling, the fake upstream stands alone, no import cycles - and the check really
fails when product code imports ops."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from database import build as db

PACKAGES = ["auth_service", "ingest", "database", "gateway", "legacy_import", "observability", "ops", "fake_upstream",
            "tests"]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINT_IMPORTS, "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)


def copy_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(db.ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(db.ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contracts_hold():
    result = lint_imports(db.ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_product_importing_ops_breaks_the_contract(tmp_path):
    root = copy_tree(tmp_path)
    clients = root / "ingest" / "clients.py"
    clients.write_text(clients.read_text() + "\nfrom ops import services  # planted\n")
    result = lint_imports(root)
    assert result.returncode != 0
    assert "Product code never imports the tooling BROKEN" in result.stdout
    assert "ingest.clients -> ops.services" in result.stdout


def test_an_import_cycle_breaks_the_contract(tmp_path):
    root = copy_tree(tmp_path)
    settings = root / "ingest" / "settings.py"
    settings.write_text(settings.read_text() + "\nfrom ingest import sync  # planted: sync imports settings\n")
    result = lint_imports(root)
    assert result.returncode != 0 and "No import cycles BROKEN" in result.stdout
