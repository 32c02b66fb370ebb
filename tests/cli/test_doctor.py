"""`koda doctor` run as a user runs it: on this machine, without bubblewrap and ripgrep, with a
broken koda.toml, with a keys.json others can read, and with no key at all."""

from __future__ import annotations

import json
import os
import re
import site
import socket
import subprocess
import threading
import venv
from pathlib import Path
from typing import Any

import pytest

import koda
from koda.cli.doctor import REFUSED_HOST, connect_status, egress_verdict, sandbox_probe
from koda.sandbox.allowlist import Allowlist
from koda.sandbox.launcher import CommandLauncher
from koda.sandbox.proxy import EgressProxies
from koda.sandbox.status import SandboxStatus, sandbox_status

from .helpers import clean_env, run_koda

SECRET = "sk-ant-api03-doctor-secret-value-4321"


class World:
    """A project, a KODA_HOME and a HOME of the test's own."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.project = base / "project"
        self.koda_home = base / "koda-home"
        self.home = base / "home"
        for folder in (self.project, self.koda_home, self.home):
            folder.mkdir()

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env({"KODA_HOME": str(self.koda_home), "HOME": str(self.home), **extra})

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = run_koda(["doctor", *args], self.project, env or self.env(ANTHROPIC_API_KEY=SECRET))
        assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
        return proc

    def checks(self, *args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
        proc = self.run("--json", *args, env=env)
        report = json.loads(proc.stdout)
        failed = any(c["status"] == "fail" for c in report["checks"])
        assert proc.returncode == (1 if failed else 0), proc.stdout
        return {c["name"]: c for c in report["checks"]}

    def write_config(self, text: str, *, user: bool = False) -> Path:
        path = self.koda_home / "koda.toml" if user else self.project / ".koda" / "koda.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def store_key(self, mode: int) -> Path:
        path = self.koda_home / "keys.json"
        path.write_text(json.dumps({"openai": "sk-proj-stored-key-abcdef-7777"}), encoding="utf-8")
        path.chmod(mode)
        return path


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


needs_sandbox = pytest.mark.skipif(
    not sandbox_status().available, reason="bubblewrap cannot run here"
)


def line(output: str, name: str) -> str:
    """The line of one check, with its fix line if there is one."""
    lines = output.splitlines()
    for i, text in enumerate(lines):
        found = re.match(r"(ok|warn|fail) +(\S+(?: \S+)*)  ", text)
        if found and found[2] == name:
            fix = lines[i + 1] if i + 1 < len(lines) and "fix:" in lines[i + 1] else ""
            return f"{text}\n{fix}"
    raise AssertionError(f"no {name} line in:\n{output}")


def test_every_check_reports_in_json(world: World) -> None:
    checks = world.checks()
    expected = {"sandbox", "process limit", "egress proxy", "ripgrep", "koda.toml", "provider"}
    assert expected | {"anthropic key", "trust mode"} <= set(checks)
    for check in checks.values():
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in ("ok", "warn", "fail")
        assert check["detail"]
        assert bool(check["fix"]) == (check["status"] != "ok"), check


def test_ready_machine_passes(world: World) -> None:
    proc = world.run()
    assert proc.returncode == 0, proc.stdout
    assert line(proc.stdout, "egress proxy").startswith("ok")
    assert "403" in line(proc.stdout, "egress proxy")
    assert line(proc.stdout, "ripgrep").startswith("ok    ripgrep")
    assert "ripgrep" in line(proc.stdout, "ripgrep").split("ripgrep", 1)[1]
    assert line(proc.stdout, "koda.toml").startswith("ok")
    key = line(proc.stdout, "anthropic key")
    assert key.startswith("ok") and "sk-a…4321" in key and "ANTHROPIC_API_KEY" in key
    assert SECRET not in proc.stdout
    assert "anthropic" in line(proc.stdout, "provider")


@needs_sandbox
def test_the_sandbox_is_tried_for_real(world: World) -> None:
    before = set(Path("/var/tmp").glob("koda-doctor-*"))
    checks = world.checks()
    assert checks["sandbox"]["status"] == "ok", checks["sandbox"]
    assert "its write outside the project was refused" in checks["sandbox"]["detail"]
    assert checks["process limit"]["status"] in ("ok", "warn")
    assert checks["trust mode"]["status"] == "ok"
    assert "starts in auto" in checks["trust mode"]["detail"]
    # The probe's throwaway folder is gone.
    assert set(Path("/var/tmp").glob("koda-doctor-*")) <= before
    assert list(world.home.iterdir()) == []


def bare_python(world: World) -> list[str]:
    """A Python with no rg beside it, running this checkout of Koda."""
    env_dir = world.base / "bare-venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    return [str(env_dir / "bin" / "python"), "-m", "koda"]


def run_without_tools(world: World, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    empty = world.base / "empty-bin"
    empty.mkdir(exist_ok=True)
    source = Path(koda.__file__).resolve().parents[1]
    path = os.pathsep.join([str(source), *site.getsitepackages()])
    env = world.env(PATH=str(empty), PYTHONPATH=path, ANTHROPIC_API_KEY=SECRET, **extra)
    proc = subprocess.run(
        [*bare_python(world), "doctor", *args],
        cwd=world.project, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def test_without_bubblewrap_and_ripgrep_the_fixes_are_printed(world: World) -> None:
    proc = run_without_tools(world)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # warnings, not failures
    sandbox = line(proc.stdout, "sandbox")
    assert sandbox.startswith("warn") and "bwrap" in sandbox
    assert "fix: install bubblewrap" in sandbox
    ripgrep = line(proc.stdout, "ripgrep")
    assert ripgrep.startswith("warn") and "built-in search" in ripgrep
    assert "fix: install ripgrep" in ripgrep
    trust = line(proc.stdout, "trust mode")
    assert trust.startswith("warn") and "starts in safe" in trust
    assert "install bubblewrap" in trust
    assert line(proc.stdout, "egress proxy").startswith("ok")


def test_auto_asked_for_without_a_sandbox_fails(world: World) -> None:
    proc = run_without_tools(world, "--json", KODA_MODE="auto")
    assert proc.returncode == 1
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["trust mode"]["status"] == "fail"
    assert "Auto mode needs the sandbox" in checks["trust mode"]["detail"]
    assert "bubblewrap" in checks["trust mode"]["fix"]


def test_a_bad_project_koda_toml_fails_with_where_and_what(world: World) -> None:
    path = world.write_config('[permissons]\nallow = ["Read"]\n')
    proc = world.run()
    assert proc.returncode == 1
    config = line(proc.stdout, "koda.toml")
    assert config.startswith("fail")
    assert f"{path}: line 1" in config and "did you mean permissions" in config
    assert "fix:" in config
    # The other checks still run.
    assert line(proc.stdout, "egress proxy").startswith("ok")


def test_a_bad_user_koda_toml_fails_too(world: World) -> None:
    path = world.write_config("[network]\nallow = [\n", user=True)
    checks = world.checks()
    assert checks["koda.toml"]["status"] == "fail"
    assert str(path) in checks["koda.toml"]["detail"]
    assert "not valid TOML" in checks["koda.toml"]["detail"]


def test_extra_hosts_from_koda_toml_are_listed(world: World) -> None:
    path = world.write_config('[network]\nallow = ["git.corp.example.com"]\n')
    checks = world.checks()
    assert checks["koda.toml"]["status"] == "ok" and str(path) in checks["koda.toml"]["detail"]
    egress = checks["egress proxy"]
    assert egress["status"] == "ok"
    assert "16 hosts allowed" in egress["detail"] and "git.corp.example.com" in egress["detail"]


def test_a_keys_file_others_can_read_is_a_warning_with_the_chmod(world: World) -> None:
    path = world.store_key(0o644)
    proc = world.run()
    assert proc.returncode == 0
    keys = line(proc.stdout, "keys.json")
    assert keys.startswith("warn") and "0644" in keys
    assert f"fix: chmod 600 {path}" in keys
    stored = line(proc.stdout, "openai key")
    assert "sk-p…7777" in stored and "stored" in stored
    assert "sk-proj-stored-key" not in proc.stdout


def test_a_private_keys_file_is_fine(world: World) -> None:
    world.store_key(0o600)
    checks = world.checks(env=world.env())
    assert checks["keys.json"]["status"] == "ok"
    assert checks["provider"]["status"] == "ok" and "openai" in checks["provider"]["detail"]


def test_no_key_at_all_fails_with_how_to_set_one(world: World) -> None:
    proc = world.run(env=world.env())
    assert proc.returncode == 1
    provider = line(proc.stdout, "provider")
    assert provider.startswith("fail")
    assert "ANTHROPIC_API_KEY" in provider and "koda auth login" in provider
    assert "ollama" in provider  # local servers named, not probed
    assert "keys.json" not in proc.stdout  # no file, no line


def test_a_local_provider_needs_no_key(world: World) -> None:
    checks = world.checks(env=world.env(KODA_PROVIDER="ollama"))
    assert checks["provider"]["status"] == "ok"
    assert "not probed" in checks["provider"]["detail"]


def test_a_missing_project_root_is_a_usage_error(world: World) -> None:
    proc = world.run("--project-root", str(world.base / "nowhere"))
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr


# The failure branches, in process: a launcher without a sandbox, a proxy that lets a host by.


def test_a_write_that_lands_outside_the_project_fails(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    none = SandboxStatus(False, "none", "no sandbox in this test", "none to give")
    launcher = CommandLauncher(project, none, koda_dirs=[])
    try:
        check = sandbox_probe(launcher, none, tmp_path / "outside.txt")
    finally:
        launcher.close()
    assert (tmp_path / "outside.txt").exists()
    assert check.status == "fail" and "wrote outside the project" in check.detail
    assert "--mode safe" in check.fix


@needs_sandbox
def test_a_write_refused_by_the_sandbox_passes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    launcher = CommandLauncher(project, sandbox_status(), koda_dirs=[])
    try:
        check = sandbox_probe(launcher, sandbox_status(), tmp_path / "outside.txt")
    finally:
        launcher.close()
    assert not (tmp_path / "outside.txt").exists()
    assert check.status == "ok", check


def answer_once(reply: bytes) -> tuple[int, threading.Thread]:
    """A one-shot server on 127.0.0.1 that reads a request head and sends `reply`."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with server, server.accept()[0] as conn:
            while b"\r\n\r\n" not in conn.recv(4096):
                pass
            conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_a_proxy_that_lets_the_host_through_fails() -> None:
    port, thread = answer_once(b"HTTP/1.1 200 Connection established\r\n\r\n")
    answer = connect_status(port, REFUSED_HOST)
    thread.join(10)
    assert answer == "HTTP/1.1 200 Connection established"
    check = egress_verdict(answer, Allowlist.default())
    assert check.status == "fail" and "not refused" in check.detail


def test_the_real_proxy_refuses_the_probe_host() -> None:
    proxies = EgressProxies(Allowlist.default())
    proxies.start()
    try:
        answer = connect_status(proxies.http_port, REFUSED_HOST)
    finally:
        proxies.stop()
    assert answer.startswith("HTTP/1.1 403")
    assert egress_verdict(answer, Allowlist.default()).status == "ok"
