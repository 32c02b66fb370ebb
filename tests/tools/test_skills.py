"""Skills: SKILL.md headers, discovery and precedence, ListSkills, ActivateSkill and tool limits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from koda.engine.events import ToolCallResult
from koda.skills import discover_skills
from koda.skills.frontmatter import FrontMatterError, split_front_matter
from koda.skills.skill import tool_names
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.catalog import ToolCatalog
from koda.tools.read import Read
from koda.tools.skills import ALWAYS_AVAILABLE, ActivateSkill, ListSkills
from koda.tools.write import Write

if TYPE_CHECKING:
    from conftest import Harness


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "user"
    folder.mkdir()
    return folder


def add_skill(base: Path, folder: str, header: str, body: str = "Do the thing.") -> Path:
    path = base / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{header}\n---\n{body}\n", encoding="utf-8")
    return path


async def list_skills(ctx: ToolContext, user_dir: Path, **args: Any) -> str:
    result = await ListSkills(user_dir).run(ctx, args)
    assert result.ok
    return result.output


async def activate(ctx: ToolContext, user_dir: Path, name: str) -> ToolResult:
    return await ActivateSkill(user_dir).run(ctx, {"name": name})


# The front matter reader


def test_front_matter_forms() -> None:
    text = (
        "\ufeff---\r\n"
        "# a comment\r\n"
        "name: review\r\n"
        'description: "Check \\"diffs\\" # not a comment"\r\n'
        "allowed-tools: [Read, 'Grep', \"Glob\"]\r\n"
        "tags:\r\n"
        "- one\r\n"
        "- 'two, three'\r\n"
        "metadata:\r\n"
        "  author: someone\r\n"
        "version: 1.0 # trailing comment\r\n"
        "---\r\n"
        "Body line\r\n"
    )
    header, body = split_front_matter(text)
    assert header == {
        "name": "review",
        "description": 'Check "diffs" # not a comment',
        "allowed-tools": ["Read", "Grep", "Glob"],
        "tags": ["one", "two, three"],
        "metadata": None,
        "version": "1.0",
    }
    assert body == "Body line\n"


def test_block_scalars_and_wrapped_plain_values() -> None:
    header, _ = split_front_matter(
        "---\n"
        "folded: >\n  first line\n  same paragraph\n\n  second paragraph\n"
        "literal: |-\n  keep\n    indented\n"
        "wrapped: a plain value\n  that wraps\n"
        "single: 'it''s'\n"
        "empty:\n"
        "commented: # nothing here\n"
        "---\n"
    )
    assert header == {
        "folded": "first line same paragraph\nsecond paragraph",
        "literal": "keep\n  indented",
        "wrapped": "a plain value that wraps",
        "single": "it's",
        "empty": "",
        "commented": "",
    }


def test_yaml_booleans_stay_text() -> None:
    # PyYAML would read `no` as False; a skill called "no" is just a name.
    header, _ = split_front_matter("---\nname: no\ndescription: on\n---\n")
    assert header == {"name": "no", "description": "on"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no header\n", "does not start with a '---' line"),
        ("---\nname: x\n", "no closing '---' line"),
        ("---\nname: x\nname: y\n---\n", "the key 'name' appears twice"),
        ("---\njust words\n---\n", "line 2 is not 'key: value'"),
        ("---\n  indented: x\n---\n", "line 2 is indented but belongs to no key"),
        ('---\nname: "open\n---\n', "line 2: a quoted value is not closed"),
        ("---\nname: 'x' extra\n---\n", "unexpected text after a quoted value"),
        ("---\ntools: [a, b\n---\n", "is not closed with ']'"),
        ("---\ntools: [a, [b]]\n---\n", "nested lists or mappings"),
        ("---\ntools: [a, , b]\n---\n", "the list has an empty item"),
        ("---\ntools:\n- a: b\n---\n", "list items must be plain values"),
    ],
)
def test_malformed_front_matter_says_why(text: str, problem: str) -> None:
    with pytest.raises(FrontMatterError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        split_front_matter(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Read, Grep, Glob", ("Read", "Grep", "Glob")),
        ("Read Grep", ("Read", "Grep")),
        ("Bash(git diff:*), Read, Bash(git log:*)", ("Bash", "Read")),
        (["Read", "Bash(npm run test *)"], ("Read", "Bash")),
        ("", None),
        ([], None),
        (None, None),
    ],
)
def test_allowed_tools_forms(value: Any, expected: tuple[str, ...] | None) -> None:
    assert tool_names(value) == expected


# Discovery


def test_builtins_are_shipped(root: Path, user_dir: Path) -> None:
    scan = discover_skills(root, user_dir)
    assert [s.name for s in scan.skills] == ["code-review", "security-audit"]
    assert all(s.source == "built-in" and s.allowed_tools is None for s in scan.skills)
    assert all(len(s.body) > 500 and s.description for s in scan.skills)
    assert scan.notes == []


def test_project_overrides_user_overrides_builtin(root: Path, user_dir: Path) -> None:
    add_skill(user_dir / "skills", "code-review", "description: the user's review")
    add_skill(user_dir / "skills", "deploy", "name: deploy\ndescription: user deploy")
    add_skill(root / ".claude/skills", "deploy", "name: deploy\ndescription: claude deploy")
    add_skill(root / ".agents/skills", "deploy-dir", "name: Deploy\ndescription: agents deploy")
    add_skill(root / ".koda/skills", "lint", "name: lint\ndescription: koda lint")
    add_skill(root / ".claude/skills", "lint", "name: lint\ndescription: claude lint")
    scan = discover_skills(root, user_dir)
    by_name = {s.name.lower(): s for s in scan.skills}
    assert sorted(by_name) == ["code-review", "deploy", "lint", "security-audit"]
    assert (by_name["code-review"].source, by_name["code-review"].description) == (
        "user",
        "the user's review",
    )
    assert by_name["deploy"].description == "agents deploy"  # .agents before .claude
    assert by_name["deploy"].location == ".agents/skills/deploy-dir/SKILL.md"
    assert by_name["lint"].description == "koda lint"
    # Overriding across folders is silent; it is how a project adapts a skill.
    assert scan.notes == []


def test_clash_inside_one_folder_is_noted(root: Path, user_dir: Path) -> None:
    add_skill(root / ".koda/skills", "a", "name: same\ndescription: first")
    add_skill(root / ".koda/skills", "b", "name: same\ndescription: second")
    scan = discover_skills(root, user_dir)
    found = scan.find("SAME")
    assert found is not None and found.description == "first"
    assert scan.notes == [
        ".koda/skills/b/SKILL.md: skipped, .koda/skills/a/SKILL.md already defines 'same'"
    ]


def test_name_defaults_to_the_folder(root: Path, user_dir: Path) -> None:
    add_skill(root / ".koda/skills", "from-folder", "description: no name key")
    assert discover_skills(root, user_dir).find("from-folder") is not None


def test_malformed_skills_are_skipped_with_notes(root: Path, user_dir: Path) -> None:
    base = root / ".koda/skills"
    add_skill(base, "nodesc", "name: nodesc")
    add_skill(base, "badname", "name: has spaces\ndescription: x")
    add_skill(base, "listname", "name: [a, b]\ndescription: x")
    add_skill(base, "nested", "name: nested\ndescription:\n  key: value")
    add_skill(base, "nobody", "name: nobody\ndescription: x", body="   ")
    (base / "noheader").mkdir()
    (base / "noheader" / "SKILL.md").write_text("# Just markdown\n", encoding="utf-8")
    (base / "binary").mkdir()
    (base / "binary" / "SKILL.md").write_bytes(b"---\nname: bin\x00\n---\n")
    (base / "huge").mkdir()
    (base / "huge" / "SKILL.md").write_text("---\n" + "x" * 300_000, encoding="utf-8")
    add_skill(base, "good", "name: good\ndescription: fine")
    (base / "not-a-skill").mkdir()  # no SKILL.md: not a skill, no note
    (base / "README.md").write_text("notes", encoding="utf-8")
    scan = discover_skills(root, user_dir)
    assert [s.name for s in scan.skills] == ["code-review", "good", "security-audit"]
    notes = "\n".join(scan.notes)
    for expected in [
        ".koda/skills/nodesc/SKILL.md: skipped, it has no description",
        ".koda/skills/badname/SKILL.md: skipped, its name 'has spaces' is not",
        ".koda/skills/listname/SKILL.md: skipped, its 'name' is a list, not text",
        ".koda/skills/nested/SKILL.md: skipped, its 'description' is a nested mapping",
        ".koda/skills/nobody/SKILL.md: skipped, it has no instructions",
        ".koda/skills/noheader/SKILL.md: skipped, it does not start with a '---' line",
        ".koda/skills/binary/SKILL.md: skipped, it is not a text file",
        ".koda/skills/huge/SKILL.md: skipped, it is larger than 256 KB",
    ]:
        assert expected in notes
    assert len(scan.notes) == 8


def test_project_skill_linking_outside_is_refused(
    root: Path, user_dir: Path, outside: Path
) -> None:
    secret = add_skill(outside, "s", "name: leak\ndescription: secret", body="TOP SECRET")
    (root / ".koda/skills/leak").mkdir(parents=True)
    (root / ".koda/skills/leak/SKILL.md").symlink_to(secret)
    (root / ".agents").mkdir()
    (root / ".agents/skills").symlink_to(outside, target_is_directory=True)
    scan = discover_skills(root, user_dir)
    assert scan.find("leak") is None
    assert scan.notes == [
        ".koda/skills/leak/SKILL.md: skipped, it links to a file outside the project",
        ".agents/skills/s/SKILL.md: skipped, it links to a file outside the project",
    ]


def test_broken_link_is_noted_not_fatal(root: Path, user_dir: Path) -> None:
    (root / ".koda/skills/gone").mkdir(parents=True)
    (root / ".koda/skills/gone/SKILL.md").symlink_to(root / "missing.md")
    add_skill(root / ".koda/skills", "ok", "name: ok\ndescription: fine")
    scan = discover_skills(root, user_dir)
    assert scan.find("ok") is not None
    assert scan.notes == [
        ".koda/skills/gone/SKILL.md: skipped, it cannot be read (No such file or directory)"
    ]


def test_user_skills_may_be_links(root: Path, user_dir: Path, outside: Path) -> None:
    # The user's own folder is theirs to arrange (dotfiles); only project files are confined.
    target = add_skill(outside, "mine", "name: mine\ndescription: from dotfiles")
    (user_dir / "skills").mkdir()
    (user_dir / "skills" / "mine").symlink_to(target.parent, target_is_directory=True)
    assert discover_skills(root, user_dir).find("mine") is not None


def test_non_utf8_skill_is_read_with_replacement(root: Path, user_dir: Path) -> None:
    path = root / ".koda/skills/latin/SKILL.md"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"---\nname: latin\ndescription: caf\xe9\n---\nBody\n")
    skill = discover_skills(root, user_dir).find("latin")
    assert skill is not None and skill.description == "caf\ufffd"


# ListSkills


async def test_list_shows_names_descriptions_and_notes(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    add_skill(root / ".koda/skills", "deploy", "name: deploy\ndescription: Ship it")
    add_skill(root / ".koda/skills", "broken", "name: broken")
    output = await list_skills(ctx, user_dir)
    lines = output.splitlines()
    assert lines[0] == "3 skills:"
    assert lines[1].startswith("- code-review: Review code changes")
    assert lines[2] == "- deploy: Ship it [project: .koda/skills/deploy/SKILL.md]"
    assert lines[3].startswith("- security-audit: Audit a project")
    assert lines[4:6] == ["", "Skipped:"]
    assert lines[6].startswith("- .koda/skills/broken/SKILL.md: skipped, it has no description")


async def test_list_query_matches_every_word(ctx: ToolContext, user_dir: Path) -> None:
    output = await list_skills(ctx, user_dir, query="SECURITY weaknesses")
    assert output.splitlines()[0] == "1 skill:"
    assert "security-audit" in output and "code-review" not in output
    assert await list_skills(ctx, user_dir, query="kubernetes") == "No skills match 'kubernetes'."
    assert "2 skills" in await list_skills(ctx, user_dir, query=None)


async def test_list_rejects_a_wrong_type(ctx: ToolContext, user_dir: Path) -> None:
    with pytest.raises(ToolError, match="'query' must be a string"):
        await ListSkills(user_dir).run(ctx, {"query": 3})


async def test_default_user_dir_is_the_config_folder(
    ctx: ToolContext, private_koda_home: Path
) -> None:
    add_skill(private_koda_home / "skills", "home-skill", "description: from KODA_HOME")
    assert "home-skill: from KODA_HOME" in (await ListSkills().run(ctx, {})).output


# ActivateSkill


async def test_activate_returns_the_body_and_no_limit(ctx: ToolContext, user_dir: Path) -> None:
    result = await activate(ctx, user_dir, " Code-Review ")
    assert result.ok
    assert result.output.startswith("Skill code-review (built-in) is active. Its instructions:")
    assert "# Code review" in result.output
    # None lifts a limit an earlier skill set; the engine reads it as "every tool".
    assert result.meta == {"allowed_tools": None}


async def test_activate_with_allowed_tools_limits_them(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    add_skill(
        root / ".koda/skills",
        "review-only",
        "name: review-only\ndescription: look only\nallowed-tools: Read, Bash(git diff:*)",
        body="Only look.\nSee checklist.md.",
    )
    result = await activate(ctx, user_dir, "review-only")
    assert result.meta["allowed_tools"] == ["Read", "Bash", *ALWAYS_AVAILABLE]
    assert "Only look.\nSee checklist.md." in result.output
    assert "relative to .koda/skills/review-only/" in result.output
    assert "you can use only: Read, Bash" in result.output


async def test_activate_unknown_suggests_the_closest(ctx: ToolContext, user_dir: Path) -> None:
    with pytest.raises(ToolError) as info:
        await activate(ctx, user_dir, "code-reveiw")
    assert str(info.value) == (
        "No skill named 'code-reveiw'. Did you mean code-review? "
        "Available: code-review, security-audit."
    )
    bad_args: list[dict[str, Any]] = [{}, {"name": ""}, {"name": ["code-review"]}]
    for bad in bad_args:
        with pytest.raises(ToolError):
            await ActivateSkill(user_dir).run(ctx, bad)


async def test_activate_caps_a_long_body(ctx: ToolContext, root: Path, user_dir: Path) -> None:
    add_skill(root / ".koda/skills", "long", "name: long\ndescription: x", body="y" * 100_000)
    ctx.context_window = 100_000
    result = await activate(ctx, user_dir, "long")
    assert result.output.count("y") < 40_100
    assert "cut at 40000 characters" in result.output


def test_skill_tools_are_read_only(user_dir: Path) -> None:
    assert ListSkills(user_dir).effect({}) == Effect.READ_ONLY
    assert ActivateSkill(user_dir).effect({"name": "x"}) == Effect.READ_ONLY


# Through the engine


def call(call_id: str, tool: str, **args: Any) -> dict[str, Any]:
    return {"id": call_id, "name": tool, "args": args}


def skill_catalog() -> ToolCatalog:
    return ToolCatalog([Read(), Write(), ListSkills(), ActivateSkill()])


async def test_allowed_tools_narrow_later_calls_until_another_skill(harness: Harness) -> None:
    add_skill(
        harness.project / ".koda/skills",
        "look",
        "name: look\ndescription: read only\nallowed-tools: [Read]",
    )
    session = harness.session(
        [
            {"tool_calls": [call("a", "ActivateSkill", name="look")]},
            {"tool_calls": [call("w1", "Write", path="new.txt", content="x")]},
            {"tool_calls": [call("r1", "Read", path="hello.txt")]},
            {"tool_calls": [call("b", "ActivateSkill", name="code-review")]},
            {"tool_calls": [call("w2", "Write", path="new.txt", content="x")]},
            {"text": "done"},
        ],
        catalog=skill_catalog(),
    )
    sink = await harness.turn(session, "go")
    results = {r.id: r for r in sink.of_type(ToolCallResult)}
    assert results["a"].ok
    assert not results["w1"].ok
    assert results["w1"].output.startswith("Write is not available while the active skill")
    assert results["r1"].ok and "hello world" in results["r1"].output
    # A skill without a limit lifts the earlier one.
    assert results["b"].ok and results["w2"].ok
    assert (harness.project / "new.txt").read_text() == "x"
    assert session.allowed_tools is None


async def test_system_prompt_offers_skills_only_with_activate(harness: Harness) -> None:
    from koda.engine.agent import KodaAgent

    add_skill(harness.project / ".koda/skills", "deploy", "name: deploy\ndescription: Ship it")
    with_skills = KodaAgent.create(harness.project, skill_catalog()).system_prompt
    assert "Skills (load one with ActivateSkill" in with_skills
    assert "- code-review: Review code changes" in with_skills
    assert "- deploy: Ship it" in with_skills
    without = KodaAgent.create(harness.project, ToolCatalog([Read()])).system_prompt
    assert "ActivateSkill" not in without and "code-review" not in without


def test_prompt_skill_list_is_capped(root: Path, user_dir: Path) -> None:
    from koda.engine.prompt import MAX_PROMPT_SKILLS, skills_section

    for i in range(40):
        add_skill(root / ".koda/skills", f"s{i:02}", f"description: {'d' * 300}")
    section = skills_section(discover_skills(root, user_dir).skills)
    lines = section.splitlines()
    assert len(lines) == 1 + MAX_PROMPT_SKILLS + 1
    assert lines[-1] == "- ... and 12 more: see ListSkills."
    assert all(len(line) < 220 for line in lines)
