"""The code's shape is checked, not hoped for: ruff, mypy --strict and the import contracts.

The contracts (``[tool.importlinter]`` in pyproject.toml): layers ``api | cli | web -> features ->
orchestration -> kernel``; no import cycles between siblings; every feature used by the others only
through its face (``turnup/<feature>/__init__.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(args: list[str], cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_ruff_finds_nothing_in_src_tests_and_bench() -> None:
    result = _run([str(BIN / "ruff"), "check", "--output-format", "concise", "src", "tests", "bench"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing_in_src() -> None:
    result = _run([str(BIN / "mypy"), "--strict", "src/turnup"])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr


def test_import_contracts_are_kept() -> None:
    result = _run([str(BIN / "lint-imports"), "--no-cache"])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr


def test_an_import_of_another_features_orm_breaks_the_contracts(tmp_path: Path) -> None:
    """The contracts can fail: one import of ``turnup.accounts.orm`` from inside quoting breaks them."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "turnup" / "quoting" / "services.py"
    target.write_text(target.read_text() + "\nfrom turnup.accounts.orm import Customer as _Leak  # noqa\n")
    env_path = str(tmp_path / "src")
    result = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": env_path, "PATH": str(BIN)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "turnup.quoting.services -> turnup.accounts.orm" in result.stdout
