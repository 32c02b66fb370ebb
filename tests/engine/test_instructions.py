"""Instruction files in the system prompt: which, in what order, capped, and stable bytes."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from koda.engine.agent import KodaAgent
from koda.engine.instructions import (
    MAX_FILE_BYTES,
    find_instructions,
    instructions_section,
    load_instructions,
)
from koda.providers.scripted import ScriptedProvider
from koda.tools.catalog import ToolCatalog
from koda.tools.memory import MemoryWrite

if TYPE_CHECKING:
    from conftest import Harness


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    return folder


def test_user_file_then_agents_claude_koda(project: Path, user_dir: Path) -> None:
    (project / "KODA.md").write_text("koda rules\n")
    (project / "CLAUDE.md").write_text("claude rules\n")
    (project / "AGENTS.md").write_text("agents rules\n")
    (user_dir / "AGENTS.md").write_text("user rules\n")
    assert load_instructions(project, user_dir) == (
        "# Instructions from the user and the project\n"
        "Follow these; where they conflict, the project's files win over the user's.\n\n"
        "## AGENTS.md (user, all projects)\nuser rules\n\n"
        "## AGENTS.md (project)\nagents rules\n\n"
        "## CLAUDE.md (project)\nclaude rules\n\n"
        "## KODA.md (project)\nkoda rules"
    )


def test_missing_and_empty_files_are_left_out(project: Path, user_dir: Path) -> None:
    assert load_instructions(project, user_dir) == ""
    assert load_instructions(project, user_dir / "missing") == ""
    (project / "AGENTS.md").write_text("\n  \n")
    (project / "CLAUDE.md").mkdir()  # a folder by that name is not instructions
    (project / "KODA.md").write_text("only this")
    assert [f.heading for f in find_instructions(project, user_dir)] == ["KODA.md (project)"]


def test_bom_and_line_ends_are_normalised(project: Path, user_dir: Path) -> None:
    (project / "AGENTS.md").write_bytes(b"\xef\xbb\xbfone\r\ntwo\rthree\n\n\n")
    (project / "KODA.md").write_bytes(b"caf\xe9 latin-1\n")
    files = find_instructions(project, user_dir)
    assert [f.text for f in files] == ["one\ntwo\nthree", "caf\ufffd latin-1"]


def test_binary_file_is_not_loaded(project: Path, user_dir: Path) -> None:
    (project / "AGENTS.md").write_bytes(b"text\x00\x01\x02")
    [found] = find_instructions(project, user_dir)
    assert found.text == "[not loaded: it is not a text file]"


def test_large_file_is_cut_at_a_line_with_a_note(project: Path, user_dir: Path) -> None:
    line = "é" * 99 + "\n"  # two-byte characters, so a byte cut could split one
    (project / "AGENTS.md").write_text(line * 400, encoding="utf-8")
    size = (project / "AGENTS.md").stat().st_size
    [found] = find_instructions(project, user_dir)
    body, note = found.text.rsplit("\n", 1)
    assert note == f"[truncated: the file has {size // 1024} KB; only its first 32 KB are loaded]"
    assert len(body.encode("utf-8")) <= MAX_FILE_BYTES
    assert body.split("\n") == [line.strip()] * len(body.split("\n"))  # whole lines only
    assert "\ufffd" not in body


def test_project_file_linking_outside_is_not_loaded(
    project: Path, user_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE KEY")
    (project / "CLAUDE.md").symlink_to(secret)
    text = load_instructions(project, user_dir)
    assert "PRIVATE KEY" not in text
    assert "## CLAUDE.md (project)\n[not loaded: it links to a file outside the project]" in text


def test_user_file_may_link_anywhere(project: Path, user_dir: Path, tmp_path: Path) -> None:
    dotfile = tmp_path / "dotfiles-agents.md"
    dotfile.write_text("from dotfiles")
    (user_dir / "AGENTS.md").symlink_to(dotfile)
    assert "from dotfiles" in load_instructions(project, user_dir)


def test_a_file_linked_to_another_is_shown_once(project: Path, user_dir: Path) -> None:
    (project / "AGENTS.md").write_text("shared rules")
    (project / "CLAUDE.md").symlink_to(project / "AGENTS.md")
    text = load_instructions(project, user_dir)
    assert text.count("shared rules") == 1
    assert "## CLAUDE.md (project)\n[the same file as AGENTS.md (project), shown above]" in text


def test_section_of_no_files_is_empty() -> None:
    assert instructions_section([]) == ""


def test_agent_reads_the_config_folder_by_default(project: Path, private_koda_home: Path) -> None:
    (private_koda_home / "AGENTS.md").write_text("home rules")
    (project / "AGENTS.md").write_text("project rules")
    prompt = KodaAgent.create(project).system_prompt
    assert prompt.index("home rules") < prompt.index("project rules")
    assert prompt.startswith("You are Koda")


def test_prompt_without_files_is_the_plain_base(project: Path, user_dir: Path) -> None:
    prompt = KodaAgent.create(project, ToolCatalog([]), user_dir=user_dir).system_prompt
    assert "Instructions from the user" not in prompt
    assert prompt.endswith(f"- Platform: {platform.system()} {platform.machine()}")


async def test_prompt_stays_the_same_bytes_for_the_session(harness: Harness) -> None:
    (harness.project / "AGENTS.md").write_text("Always run pytest.\n")
    remember = {"content": "Deploys go through CI.", "scope": "project"}
    session = harness.session(
        [
            {"tool_calls": [{"id": "m1", "name": "MemoryWrite", "args": remember}]},
            {"text": "noted"},
            {"text": "second turn"},
        ],
        catalog=ToolCatalog([MemoryWrite()]),
    )
    await harness.turn(session, "remember this")
    await harness.turn(session, "and now?")
    provider = session.provider
    assert isinstance(provider, ScriptedProvider)
    requests = provider.requests
    assert len(requests) == 3
    # The memory written mid-session is in KODA.md, but the prompt is not rebuilt: caches hit.
    assert len({r.system for r in requests}) == 1
    assert "Always run pytest." in requests[0].system
    assert "Deploys go through CI." not in requests[0].system
    # The next session's agent reads it.
    fresh = KodaAgent.create(harness.project, ToolCatalog([MemoryWrite()]))
    assert "## KODA.md (project)\n## Memory\n\n- Deploys go through CI." in fresh.system_prompt
    assert fresh.system_prompt == KodaAgent.create(harness.project, fresh.catalog).system_prompt
