"""`koda auth login|logout|status` as a user runs it."""

from __future__ import annotations

import json
import stat

from .helpers import Koda


def test_login_status_logout(koda: Koda) -> None:
    secret = "sk-ant-api03-verysecretvalue-1234"
    proc = koda.run("auth", "login", "anthropic", input=secret + "\n")
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout and "sk-a…1234" in proc.stdout
    stored = koda.home / "keys.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["anthropic"] == secret

    status = koda.run("auth", "status")
    assert status.returncode == 0
    line = next(x for x in status.stdout.splitlines() if x.startswith("anthropic"))
    assert "sk-a…1234" in line and secret not in status.stdout
    assert "not configured" in next(x for x in status.stdout.splitlines() if x.startswith("openai"))
    assert "no key needed" in next(x for x in status.stdout.splitlines() if x.startswith("ollama"))

    env_status = koda.run("auth", "status", env=koda.env(OPENAI_API_KEY="sk-proj-fromenv-9876"))
    assert "from OPENAI_API_KEY" in env_status.stdout and "sk-proj-fromenv" not in env_status.stdout

    out = koda.run("auth", "logout", "anthropic")
    assert out.returncode == 0 and "Forgot" in out.stdout
    assert "anthropic" not in json.loads(stored.read_text())


def test_login_refuses_nonsense(koda: Koda) -> None:
    assert koda.run("auth", "login", "ollama", input="x\n").returncode == 2
    assert koda.run("auth", "login", "nobody", input="x\n").returncode == 2
    empty = koda.run("auth", "login", "openai", input="\n")
    assert empty.returncode == 2 and "nothing stored" in empty.stderr
    assert not (koda.home / "keys.json").exists()


def test_a_stored_key_never_reaches_the_session_database(koda: Koda) -> None:
    secret = "sk-proj-must-not-leak-0000"
    koda.run("auth", "login", "openai", input=secret)
    proc = koda.run("-p", "hi", script=[{"text": "hello"}])
    assert proc.returncode == 0, proc.stderr
    for path in koda.home.iterdir():
        if path.name.startswith("koda.db"):
            assert secret.encode() not in path.read_bytes(), path.name
