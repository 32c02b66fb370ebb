"""Attacks on secrets from Bash in Auto mode: Koda's data, keys and environment stay out of
reach even when every approval is granted."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from attack_helpers import (
    KEY,
    PY,
    VICTIM_TEXT,
    Scene,
    build_scene,
    needs_sandbox,
    unique,
)

if TYPE_CHECKING:
    from conftest import Harness

pytestmark = needs_sandbox

SECRET_NAMES = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GITHUB_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "DB_PASSWORD",
    "MY_SECRET",
)


@pytest.fixture
def scene(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    with build_scene(harness, monkeypatch) as built:
        yield built


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Each secret name set in Koda's own environment, each to a value found nowhere else."""
    values = {name: unique(name.lower()) for name in SECRET_NAMES}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    return values


@pytest.fixture
def host_process(secrets: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A process on the host started with the secrets in its environment, as Koda is."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", unique()],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **secrets},
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def q(text: object) -> str:
    return shlex.quote(str(text))


# --- Koda's data folder -------------------------------------------------------------------------


async def test_reading_the_koda_database_is_refused(scene: Scene) -> None:
    """cat, sqlite3 and Python on the session's own koda.db."""
    prompt = unique("private prompt")
    db = q(scene.koda_home / "koda.db")
    result = await scene.run(
        f"cat {db}; sqlite3 {db} 'select content from messages'; "
        f"{PY} -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
        f'"select content from messages").fetchall())\' {db}; '
        f"ls -la {q(scene.koda_home)}; cat {q(scene.victim)}",
        prompt=prompt,
    )
    stored = b"".join(p.read_bytes() for p in scene.koda_home.glob("koda.db*"))
    assert prompt.encode() in stored  # it is there, on the host
    assert prompt not in result.output
    assert VICTIM_TEXT.strip() in result.output  # the folder beside it is readable


async def test_reading_stored_keys_is_refused(scene: Scene) -> None:
    """cat and Python on Koda's keys.json."""
    keys = q(scene.koda_home / "keys.json")
    result = await scene.run(
        f"cat {keys}; {PY} -c 'import sys; print(open(sys.argv[1]).read())' {keys}; "
        f"cat {q(scene.victim)}"
    )
    assert KEY not in result.output
    assert VICTIM_TEXT.strip() in result.output


async def test_searching_the_disk_for_keys_finds_nothing(scene: Scene) -> None:
    """find / -name keys.json, then print whatever was found."""
    result = await scene.run(
        r"find / \( -path /proc -o -path /sys \) -prune -o -name keys.json -print "
        r"-exec cat {} + 2>/dev/null; echo searched"
    )
    assert "searched" in result.output
    assert KEY not in result.output
    assert str(scene.koda_home) not in result.output


async def test_koda_data_location_is_not_in_the_environment(scene: Scene) -> None:
    """echo $KODA_HOME, the way to Koda's folder."""
    result = await scene.run("echo home=$HOME koda=$KODA_HOME")
    assert f"home={scene.home} koda=\n" in result.output + "\n"


# --- Koda's process -----------------------------------------------------------------------------


async def test_reading_koda_process_environment_is_refused(
    scene: Scene, secrets: dict[str, str], host_process: subprocess.Popen[bytes]
) -> None:
    """/proc/<pid>/environ of Koda and of a host process holding the secrets."""
    result = await scene.run(
        f"cat /proc/{host_process.pid}/environ; cat /proc/{os.getpid()}/environ; "
        f"tr '\\0' '\\n' < /proc/1/environ; echo tried"
    )
    assert "tried" in result.output
    for value in secrets.values():
        assert value not in result.output
    host_view = open(f"/proc/{host_process.pid}/environ", "rb").read()  # noqa: SIM115
    assert secrets["MY_SECRET"].encode() in host_view  # the host process does hold it


async def test_reading_koda_process_root_is_refused(scene: Scene) -> None:
    """Koda's files through /proc/<koda pid>/root and /cwd, past the sandbox's mounts."""
    pid = os.getpid()
    keys = f"{scene.koda_home}/keys.json"
    result = await scene.run(
        f"cat /proc/{pid}/root{q(keys)}; ls /proc/{pid}/cwd/; cat /proc/1/root{q(keys)}"
    )
    assert KEY not in result.output
    assert "No such file or directory" in result.output


async def test_signalling_the_koda_process_fails(scene: Scene) -> None:
    """kill -0 <Koda's pid>: is it even visible?"""
    result = await scene.run(f"kill -0 {os.getpid()} && echo visible")
    assert "visible" not in result.output
    assert "No such process" in result.output


# --- the environment ----------------------------------------------------------------------------


async def test_api_keys_are_not_in_the_environment(scene: Scene, secrets: dict[str, str]) -> None:
    """env, and the environment as the process itself sees it."""
    result = await scene.run("env; tr '\\0' '\\n' < /proc/self/environ")
    for name, value in secrets.items():
        assert value not in result.output, name
        assert f"{name}=" not in result.output
    for name in ("PATH", "HOME", "LANG"):
        assert f"\n{name}=" in "\n" + result.output, name


async def test_no_process_inside_has_the_secrets(scene: Scene, secrets: dict[str, str]) -> None:
    """Every environ under /proc inside, the sandbox's own pid 1 included."""
    result = await scene.run("for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done")
    assert "PATH=" in result.output  # the files were read
    for value in secrets.values():
        assert value not in result.output


async def test_upstream_proxy_password_is_not_passed_on(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's HTTPS_PROXY with a password in it, read from inside."""
    password = unique("proxy-password")
    monkeypatch.setenv("HTTPS_PROXY", f"http://me:{password}@127.0.0.1:9")
    result = await scene.run("env | grep -i proxy")
    assert password not in result.output
    assert "HTTPS_PROXY=http://127.0.0.1:" in result.output  # the session's own proxy
