"""The habits that keep the library readable, run by the test command: ruff (lint + format), import-linter (the
layer contracts in pyproject.toml), vulture (dead code; allow-list tools/vulture_allowlist.py), module sizes, and a
plain install that does not pull the developer tools."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHECKED = ["clap_lib", "tests", "tools", "scripts", "benchmarks", "book/_ext", "notebooks"]


def _run(*cmd: str) -> subprocess.CompletedProcess:
    exe = BIN / cmd[0]
    if not exe.exists():
        pytest.fail(f"{cmd[0]} is not installed in {BIN}: bash scripts/setup_env.sh installs the dev extra")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's clap_lib, whatever else is installed
    return subprocess.run([str(exe), *cmd[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_ruff_lint():
    r = _run("ruff", "check", *CHECKED)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr


def test_ruff_format():
    r = _run("ruff", "format", "--check", *CHECKED)
    assert r.returncode == 0, "run `.venv/bin/ruff format`:\n" + r.stdout[-6000:] + r.stderr


def test_import_contracts():
    r = _run("lint-imports", "--no-cache")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr
    assert "0 broken" in r.stdout


def test_no_dead_code():
    r = _run("vulture")
    assert r.returncode == 0, (
        "dead code (delete it, or allow-list it with a reason in tools/vulture_allowlist.py):\n" + r.stdout + r.stderr
    )


def test_modules_are_small_and_the_top_level_is_short():
    pkg = ROOT / "clap_lib"
    long = {str(p.relative_to(ROOT)): n for p in pkg.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
    top = sorted(p.name for p in pkg.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file())
    assert len(top) <= 15, top


def test_every_package_says_what_it_holds_and_may_import():
    for init in sorted((ROOT / "clap_lib").glob("*/__init__.py")):
        doc = (init.read_text().split('"""') + ["", ""])[1]
        assert len(doc.split()) >= 20 and ("import" in doc), init


def test_a_plain_install_does_not_pull_the_developer_tools():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {d.split("==")[0].lower() for d in project["dependencies"]}
    dev = {d.split("==")[0].lower() for d in project["optional-dependencies"]["dev"]}
    assert {"selenium", "ruff", "import-linter", "vulture", "pytest"} <= dev and not runtime & dev
    lock = {ln.split("==")[0].lower().replace("_", "-") for ln in (ROOT / "requirements.lock.txt").read_text().split()}
    assert {d.replace("_", "-") for d in runtime | dev} <= lock
    assert project["scripts"] == {"clap": "clap_lib.cli:main"}
