"""`koda --version` and `--help`, and that starting up stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from koda._version import __version__

from .helpers import Koda, clean_env, run_koda

# Nothing of these may load just to print the version: they are slow, optional or both.
HEAVY = (
    "rich",
    "prompt_toolkit",
    "pydantic",
    "httpx",
    "httpx2",
    "anthropic",
    "openai",
    "acp",
    "mcp",
    "sqlite3",
    "asyncio",
    "koda.engine",
)


def imported_modules(importtime_stderr: str) -> list[str]:
    """Module names from `python -X importtime` output."""
    names = []
    for line in importtime_stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        names.append(line.rsplit("|", 1)[-1].strip())
    return names


def heavy_among(names: list[str]) -> list[str]:
    return [n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(koda: Koda, flag: str) -> None:
    proc = koda.run(flag)
    assert proc.returncode == 0
    assert proc.stdout == f"koda {__version__}\n"
    assert proc.stderr == ""


def test_help_mentions_prompt_output_format_and_exit_codes(koda: Koda) -> None:
    proc = koda.run("--help")
    assert proc.returncode == 0, proc.stderr
    for text in ("-p", "--output-format", "stream-json", "exit codes", "130", "koda sessions"):
        assert text in proc.stdout, text
    assert not koda.home.exists(), "--help must not create a store"


def test_version_does_not_import_heavy_modules(koda: Koda) -> None:
    """Through the installed entry point, as a user starts it."""
    proc = run_koda(["--version"], koda.project, clean_env({"PYTHONPROFILEIMPORTTIME": "1"}))
    assert proc.returncode == 0
    names = imported_modules(proc.stderr)
    assert "koda.cli.main" in names, "the import profile was not read"
    assert heavy_among(names) == []


def test_python_m_koda_version_does_not_import_heavy_modules(koda: Koda) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "koda", "--version"],
        cwd=koda.project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout == f"koda {__version__}\n"
    names = imported_modules(proc.stderr)
    assert "koda.cli.main" in names, "the import profile was not read"
    assert heavy_among(names) == []


def test_importing_the_cli_entry_module_is_light(koda: Koda) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import koda.cli.main"],
        cwd=koda.project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    names = imported_modules(proc.stderr)
    assert "koda.cli.main" in names
    assert heavy_among(names) == []


def test_help_and_usage_errors_do_not_load_the_engine(koda: Koda) -> None:
    for args in (["--help"], ["--bogus"]):
        proc = run_koda(args, koda.project, clean_env({"PYTHONPROFILEIMPORTTIME": "1"}))
        names = imported_modules(proc.stderr)
        assert "koda.cli.args" in names, args
        assert [n for n in names if n.startswith(("koda.engine", "asyncio"))] == [], args
