"""`koda demo`: the whole loop offline, driven by the scripted provider in a throwaway project."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from koda.cli.args import EXIT_ERROR, EXIT_OK
from koda.cli.headless import NobodyHere
from koda.cli.writers import TextWriter
from koda.config import KodaConfig
from koda.config_file import FileSettings
from koda.engine.agent import KodaAgent
from koda.engine.commands import EngineCommand
from koda.engine.session import KodaSession
from koda.engine.trust import TrustMode
from koda.providers.scripted import ScriptedProvider, load_script
from koda.store import Store

BUGGY = 'def greet(name):\n    return "Hello, world!"\n\n\nprint(greet("Ada"))\n'
PROMPT = "greet.py ignores the name it is given. Please fix it and check that it works."

BANNER = (
    "koda demo — a SCRIPTED run: no model is called; "
    "every reply below comes from a built-in script."
)
OUTRO = """\
That was scripted. The tools were real: greet.py was read, edited and run in a throwaway folder.
To use a real model, set a provider key (e.g. ANTHROPIC_API_KEY) and run: koda -p "your request\""""


def demo_script(python: str) -> list[dict[str, object]]:
    pace = {"chunk_size": 4, "delay_ms": 12}
    return [
        {"thinking": "The user says greet() ignores its argument. Read the file first.",
         "text": "Let me look at greet.py first.",
         "tool_calls": [{"name": "Read", "args": {"path": "greet.py"}}], **pace},
        {"text": "The function returns a fixed string. I'll make it use the name.",
         "tool_calls": [{"name": "Edit", "args": {
             "path": "greet.py", "old_string": 'return "Hello, world!"',
             "new_string": 'return f"Hello, {name}!"'}}], **pace},
        {"text": "Now let me run it to check.",
         "tool_calls": [{"name": "Bash", "args": {"command": f"{python} greet.py"}}], **pace},
        {"text": "Fixed: `greet()` now returns `Hello, {name}!`, and running the file prints "
                 "`Hello, Ada!`.", **pace},
    ]  # fmt: skip


def run_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="koda demo", description="A scripted run of Koda, offline."
    )
    parser.add_argument("--fast", action="store_true", help="no pauses between streamed chunks")
    ns = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="koda-demo-") as tmp:
        return asyncio.run(_demo(Path(tmp), fast=ns.fast))


async def _demo(tmp: Path, *, fast: bool) -> int:
    project = tmp / "project"
    project.mkdir()
    (project / "greet.py").write_text(BUGGY, encoding="utf-8")
    script = demo_script("python3" if shutil.which("python3") else shlex.quote(sys.executable))
    if fast:
        for reply in script:
            reply["delay_ms"] = 0
    provider = ScriptedProvider(load_script(json.dumps(script)))
    db = Store.open(tmp / "koda.db")
    try:
        # The same run on every machine: no koda.toml of the user's applies, and Safe mode
        # (which works with or without a sandbox) shows each change being approved.
        agent = KodaAgent.create(project, settings=FileSettings.empty())
        session = KodaSession.create(agent, db, provider, TrustMode.SAFE, KodaConfig(), home=tmp)
        print(BANNER, file=sys.stderr)
        print(f"\n> {PROMPT}\n", file=sys.stderr)
        writer = TextWriter(sys.stdout, sys.stderr, show_results=True)
        commands: asyncio.Queue[EngineCommand] = asyncio.Queue()
        # The demo says yes, as `--yes` would.
        sink = NobodyHere(writer, commands, session.mode, yes=True)
        session.add_user_message(PROMPT)
        await session.run_turn(KodaConfig(), [], sink, commands)
        print("\n" + OUTRO, file=sys.stderr)
        ok = writer.summary.end is not None and writer.summary.end.kind == "complete"
        return EXIT_OK if ok else EXIT_ERROR
    finally:
        db.close()
