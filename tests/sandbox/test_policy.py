"""The sandbox policy: which paths are writable, write-protected and hidden, and the limits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from koda.sandbox.bwrap import bwrap_argv
from koda.sandbox.env import command_env, passes
from koda.sandbox.policy import GIB, MIB, build_policy, limits_from


def make_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    for d in (".ssh", ".aws", ".config/gh", ".cache", ".npm", ".cargo/registry", ".cargo/bin"):
        (home / d).mkdir(parents=True)
    (home / ".netrc").write_text("machine x login y password z\n")
    return home


def test_credentials_are_write_protected_and_caches_writable(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    policy = build_policy(project, tmp_path / "t", koda_dirs=[], home=home)
    protected = set(policy.write_protected)
    assert {home / ".ssh", home / ".aws", home / ".config/gh", home / ".netrc"} <= protected
    assert set(policy.writable) == {home / ".cache", home / ".npm", home / ".cargo/registry"}
    assert home / ".cargo/bin" not in policy.writable  # planted binaries would run outside


def test_missing_credential_paths_are_not_listed(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    policy = build_policy(project, tmp_path / "t", koda_dirs=[], home=home)
    assert all(p.is_relative_to(project) for p in policy.write_protected)


def test_git_config_and_hooks_and_koda_dir_are_protected(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "config").write_text("[core]\n")
    policy = build_policy(project, tmp_path / "t", koda_dirs=[], home=tmp_path)
    hooks = project / ".git" / "hooks"
    assert hooks.is_dir()  # made, so no command can make it
    assert {project / ".git" / "config", hooks, project / ".koda"} <= set(policy.write_protected)


def test_koda_dirs_are_hidden_only_when_they_exist(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    policy = build_policy(
        project, tmp_path / "t", koda_dirs=[data, tmp_path / "nope"], home=tmp_path
    )
    assert policy.hidden == (data,)


def test_limits_from_settings_override_the_defaults() -> None:
    limits = limits_from(memory_mb=512, cpu_seconds=3, processes=64, output_mb=1)
    assert (limits.memory_bytes, limits.cpu_seconds, limits.processes, limits.output_bytes) == (
        512 * MIB,
        3,
        64,
        MIB,
    )
    default = limits_from()
    assert default.memory_bytes >= 2 * GIB and default.processes == 1024


def test_mount_order_puts_protection_after_the_writable_binds(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    policy = build_policy(project, tmp_path / "t", koda_dirs=[data], home=home)
    argv = bwrap_argv("bwrap", policy, project, ["bash", "-c", "true"], nproc=None)
    joined = " ".join(argv)
    assert argv.index("--ro-bind") < argv.index("--bind")  # the read-only root comes first
    assert joined.index(f"--bind {project} {project}") < joined.index(f"--ro-bind {project}/.koda")
    assert joined.index(f"--ro-bind {project}/.koda") < joined.index(f"--tmpfs {data}")
    for flag in ("--unshare-all", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--tmpfs /run" in joined and f"--bind {tmp_path / 't'} /tmp" in joined


def test_the_environment_keeps_no_secret_names() -> None:
    parent = {
        "PATH": "/bin", "HOME": "/h", "LANG": "C.UTF-8", "LC_ALL": "C", "TERM": "xterm",
        "ANTHROPIC_API_KEY": "k", "GITHUB_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": "s",
        "DB_PASSWORD": "p", "SSH_AUTH_SOCK": "/run/agent", "KODA_HOME": "/k",
        "GIT_ASKPASS": "x", "NPM_TOKEN": "n", "VIRTUAL_ENV": "/v", "RANDOM_THING": "r",
    }  # fmt: skip
    env = command_env(parent, {"HTTPS_PROXY": "http://127.0.0.1:1"}, sandboxed=True)
    assert env == {
        "PATH": "/bin", "HOME": "/h", "LANG": "C.UTF-8", "LC_ALL": "C", "TERM": "xterm",
        "VIRTUAL_ENV": "/v", "TMPDIR": "/tmp", "TMP": "/tmp", "TEMP": "/tmp",
        "HTTPS_PROXY": "http://127.0.0.1:1",
    }  # fmt: skip
    assert not passes("LC_API_KEY")  # an allowed prefix never lets a secret name through


def test_agent_and_daemon_sockets_are_hidden(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".docker" / "run").mkdir(parents=True)
    (home / ".docker" / "run" / "docker.sock").write_text("")  # stands in for the socket
    agent = tmp_path / "agent.sock"
    agent.write_text("")
    project = tmp_path / "project"
    project.mkdir()
    env = {"SSH_AUTH_SOCK": str(agent), "DOCKER_HOST": f"unix://{tmp_path}/nope.sock"}
    policy = build_policy(project, tmp_path / "t", koda_dirs=[], home=home, env=env)
    assert set(policy.hidden) == {home / ".docker/run/docker.sock", agent}
    argv = bwrap_argv("bwrap", policy, project, ["true"], nproc=None)
    assert f"--ro-bind /dev/null {agent}" in " ".join(argv)


def test_a_python_installed_under_tmp_stays_visible_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inside, /tmp is the session's own: Koda's interpreter there would vanish, and stage2 with it.
    venv = tmp_path / "venv"
    venv.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setattr(sys, "prefix", str(venv))
    policy = build_policy(project, tmp_path / "t", koda_dirs=[], home=tmp_path)
    assert venv in policy.runtime
    argv = " ".join(bwrap_argv("bwrap", policy, project, ["true"], nproc=None))
    assert argv.index(f"--ro-bind {venv} {venv}") > argv.index(" /tmp ")
    monkeypatch.setattr(sys, "prefix", str(project / ".venv"))  # the project's own venv
    (project / ".venv").mkdir()
    assert project / ".venv" not in build_policy(project, tmp_path / "t", koda_dirs=[]).runtime
