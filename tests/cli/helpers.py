"""Running the real `koda` command as a subprocess, with a scripted model and a private store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Variables that would pick a real provider or leak settings from the developer's shell.
PROVIDER_KEYS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
)


def koda_command() -> list[str]:
    """The installed `koda` script of the interpreter running the tests, else `python -m koda`.

    Only the script next to this interpreter is used: a `koda` elsewhere on PATH may be another
    installation than the code under test.
    """
    script = shutil.which("koda", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "koda"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without provider keys and KODA_* settings, plus `extra`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("KODA_") and k not in PROVIDER_KEYS
    }
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env["PYTHONUTF8"] = "1"  # decode the child's output the same way on every machine
    env.update(extra or {})
    return env


def run_koda(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `koda ARGS` to its end. Without `input`, stdin is empty (not a terminal)."""
    return subprocess.run(
        [*koda_command(), *args],
        cwd=cwd,
        env=dict(env),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )


def write_script(path: Path, replies: list[Any] | str) -> Path:
    """Write a scripted provider's script: a list of replies as JSON, or raw text as given."""
    path.write_text(replies if isinstance(replies, str) else json.dumps(replies), encoding="utf-8")
    return path


def read_requests(log: Path) -> list[dict[str, Any]]:
    """Every request the engine sent, from a KODA_SCRIPT_LOG file (none if it does not exist)."""
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def roles(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


def assert_valid_history(messages: list[dict[str, Any]]) -> None:
    """What every provider accepts: starts with the user, no user after user, calls answered."""
    assert messages, "an empty history"
    assert messages[0]["role"] == "user", messages[0]
    pending: set[str] = set()
    for i, msg in enumerate(messages):
        if msg["role"] == "tool":
            assert msg["tool_call_id"] in pending, f"message {i}: result without an open call"
            pending.discard(msg["tool_call_id"])
            continue
        assert not pending, f"message {i}: calls {pending} are not answered"
        if msg["role"] == "user" and i > 0:
            assert messages[i - 1]["role"] != "user", f"message {i}: two user messages in a row"
        if msg["role"] == "assistant":
            assert msg["content"] or msg["tool_calls"], f"message {i}: empty assistant message"
            pending = {c["id"] for c in msg["tool_calls"]}
    assert not pending, f"calls {pending} are never answered"


class Koda:
    """One test's world: a project directory (the cwd), a KODA_HOME, a script and a request log."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.project = base / "project"
        self.home = base / "home"
        self.script = base / "script.json"
        self.log = base / "requests.jsonl"
        self.project.mkdir()
        (self.project / "notes.txt").write_text("hello from the notes\n", encoding="utf-8")

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(
            {
                "KODA_HOME": str(self.home),
                "KODA_SCRIPT": str(self.script),
                "KODA_SCRIPT_LOG": str(self.log),
                **extra,
            }
        )

    def run(
        self,
        *args: str,
        script: list[Any] | str | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run koda once. The request log holds only this run's requests afterwards.

        Whatever happens, koda must never show a Python traceback.
        """
        if script is not None:
            write_script(self.script, script)
        self.log.unlink(missing_ok=True)
        proc = run_koda(
            list(args), cwd or self.project, env or self.env(), input=input, timeout=timeout
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def requests(self) -> list[dict[str, Any]]:
        return read_requests(self.log)

    def sessions_json(self, *extra: str) -> list[dict[str, Any]]:
        proc = self.run("sessions", "list", "--json", *extra)
        assert proc.returncode == 0, proc.stderr
        data: list[dict[str, Any]] = json.loads(proc.stdout)
        return data
