"""Permission rules: how `Tool(pattern)` is read, and which calls each kind of rule matches."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from koda.permissions import PermissionRules, RuleError, parse_rule
from koda.tools.bash_effect import simple_commands


def rules(**lists: list[str]) -> PermissionRules:
    return PermissionRules.parse(**lists, source=Path("/cfg/koda.toml"))


def action(rules: PermissionRules, tool: str, root: Path, **args: Any) -> str | None:
    match = rules.decide(tool, args, root)
    return match.action if match is not None else None


# --- reading rules ---


def test_tool_names_are_case_insensitive_and_normalised() -> None:
    assert parse_rule("bash").tool == "Bash"
    assert parse_rule("  WEBFETCH( *.python.org ) ").tool == "WebFetch"
    rule = parse_rule("read(.env)")
    assert (rule.tool, rule.pattern, rule.text) == ("Read", ".env", "read(.env)")
    assert parse_rule("Delete").pattern is None


def test_a_pattern_may_hold_balanced_parentheses() -> None:
    assert parse_rule("Bash(echo $(date)*)").pattern == "echo $(date)*"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bsh(ls)", "unknown tool 'Bsh': did you mean Bash? Known tools: Read, Write"),
        ("Frobnicate", "Known tools: Read, Write, Edit, Delete"),
        ("Bash(npm test", "unbalanced parentheses in 'Bash(npm test'"),
        ("Bash(a))", "unbalanced parentheses"),
        ("Bash(a) b", "unexpected text in 'Bash(a) b'"),
        ("TodoWrite(x)", "TodoWrite has nothing a pattern could match"),
        ("Bash()", "'Bash()' has an empty pattern: write Bash to match every call"),
        ("(ls)", "is not a rule"),
        ("", "is not a rule"),
        ("WebFetch(https://docs.python.org/3)", "WebFetch rules match the host name only"),
        ("Read([z-a])", "not a valid glob"),
    ],
)
def test_bad_rules_say_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(text)
    assert expected in str(info.value)


def test_a_subjectless_tool_error_lists_the_tools_that_take_patterns() -> None:
    with pytest.raises(RuleError, match="Patterns work for Bash, Delete, Edit"):
        parse_rule("AskUser(anything)")


# --- Bash ---


def test_simple_commands_splits_lists_pipes_and_substitutions() -> None:
    assert simple_commands("npm test && rm -rf ~") == ["npm test", "rm -rf ~"]
    assert simple_commands("FOO=1 npm test 2>&1 | tee log >/dev/null") == ["npm test", "tee log"]
    assert simple_commands("echo $(rm -rf x)") == ["echo '$(...)'", "rm -rf x"]
    assert simple_commands("diff <(ls a) b") == ["diff '$(...)' b", "ls a"]
    assert simple_commands("if true; then git push; fi") == ["true", "git push"]


def test_simple_commands_opens_sh_c_but_leaves_other_wrappers() -> None:
    assert simple_commands("bash -c 'npm test; git push'") == ["npm test", "git push"]
    assert simple_commands("sh -o pipefail -c 'rm z'") == ["rm z"]
    assert simple_commands("env A=1 timeout 5 npm test") == ["env A=1 timeout 5 npm test"]


def test_simple_commands_keeps_words_and_file_redirections_readable() -> None:
    # Quotes go where the shell needs them to read the same words back.
    assert simple_commands('echo "a; rm x"') == ["echo 'a; rm x'"]
    assert simple_commands('"rm" -rf build') == ["rm -rf build"]
    # Writing a file is part of what a command does; feeding it input is not.
    assert simple_commands("sort < in > out.txt") == ["sort > out.txt"]


def test_simple_commands_is_none_when_the_line_cannot_be_parsed() -> None:
    assert simple_commands('echo "unclosed') is None
    assert simple_commands("bash -c 'echo \"x'") is None


def test_bash_allow_needs_every_command_allowed_or_read_only(tmp_path: Path) -> None:
    r = rules(allow=["Bash(npm test*)"])
    assert action(r, "Bash", tmp_path, command="npm test") == "allow"
    assert action(r, "Bash", tmp_path, command="npm test -- --watch | grep ok") == "allow"
    assert action(r, "Bash", tmp_path, command="cd web && npm test") == "allow"
    assert action(r, "Bash", tmp_path, command="npm test && rm -rf ~") is None
    assert action(r, "Bash", tmp_path, command="npm test; touch x") is None
    # A file write hidden behind a read-only command is not read-only.
    assert action(r, "Bash", tmp_path, command="npm test && echo x > ~/.bashrc") is None
    assert action(r, "Bash", tmp_path, command='npm test "unclosed') is None
    # A read-only line needs no rule: the trust matrix runs it anyway.
    assert action(r, "Bash", tmp_path, command="ls") is None


def test_bash_deny_and_ask_match_any_command_or_the_whole_line(tmp_path: Path) -> None:
    r = rules(deny=["Bash(curl *)"], ask=["Bash(git push*)", "Bash(*--force*)"])
    assert action(r, "Bash", tmp_path, command="echo hi && curl http://x") == "deny"
    assert action(r, "Bash", tmp_path, command="echo $(curl -s http://x)") == "deny"
    assert action(r, "Bash", tmp_path, command="sh -c 'curl http://x'") == "deny"
    assert action(r, "Bash", tmp_path, command="git add . && git push origin") == "ask"
    assert action(r, "Bash", tmp_path, command="git commit --force-x") == "ask"
    assert action(r, "Bash", tmp_path, command="git status") is None
    # An unparseable line is matched as it stands.
    assert action(r, "Bash", tmp_path, command="curl 'http://x") == "deny"


def test_bash_patterns_are_case_sensitive(tmp_path: Path) -> None:
    r = rules(deny=["Bash(rm *)"])
    assert action(r, "Bash", tmp_path, command="rm -rf x") == "deny"
    assert action(r, "Bash", tmp_path, command="RM -rf x") is None


def test_deny_beats_ask_beats_allow(tmp_path: Path) -> None:
    r = rules(allow=["Bash"], ask=["Bash(git *)"], deny=["Bash(git push*)"])
    assert action(r, "Bash", tmp_path, command="git push") == "deny"
    assert action(r, "Bash", tmp_path, command="git log") == "ask"
    assert action(r, "Bash", tmp_path, command="make") == "allow"


def test_a_rule_only_applies_to_its_own_tool(tmp_path: Path) -> None:
    r = rules(deny=["Read(.env)", "Delete"])
    assert action(r, "Edit", tmp_path, path=".env") is None
    assert action(r, "Write", tmp_path, path="x") is None
    assert action(r, "Delete", tmp_path, path="x") == "deny"


# --- paths ---


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / ".env").write_text("SECRET=1")
    (root / "sub" / ".env").write_text("SECRET=2")
    os.symlink("../.env", root / "docs" / "env-link")
    return root


def test_a_name_pattern_matches_at_any_depth(tree: Path) -> None:
    r = rules(deny=["Read(.env)"])
    for path in (".env", "sub/.env", "./sub/../.env", str(tree / "sub" / ".env")):
        assert action(r, "Read", tree, path=path) == "deny", path
    assert action(r, "Read", tree, path="env.txt") is None


def test_a_symlink_is_judged_by_what_it_points_to_as_well(tree: Path) -> None:
    assert action(rules(deny=["Read(.env)"]), "Read", tree, path="docs/env-link") == "deny"
    # Allowing docs/** does not allow editing what a link in docs/ points to.
    allow_docs = rules(allow=["Edit(docs/**)"])
    assert action(allow_docs, "Edit", tree, path="docs/guide.md") == "allow"
    assert action(allow_docs, "Edit", tree, path="docs/env-link") is None


def test_anchored_and_double_star_patterns(tree: Path) -> None:
    r = rules(allow=["Edit(docs/**)", "Write(src/*.py)"])
    assert action(r, "Edit", tree, path="docs/a/b/c.md") == "allow"
    assert action(r, "Edit", tree, path="sub/docs/a.md") is None
    assert action(r, "Write", tree, path="src/app.py") == "allow"
    assert action(r, "Write", tree, path="src/pkg/app.py") is None, "* stays in one segment"
    assert action(r, "Write", tree, path="../proj/src/app.py") == "allow"
    assert action(r, "Write", tree, path="../elsewhere/src/app.py") is None


def test_a_directory_pattern_covers_what_is_inside(tree: Path) -> None:
    r = rules(deny=["Read(secrets)", "Delete(build/)"])
    assert action(r, "Read", tree, path="secrets/key.pem") == "deny"
    assert action(r, "Read", tree, path="app/secrets/key.pem") == "deny"
    assert action(r, "Delete", tree, path="build/out/x.o") == "deny"
    assert action(r, "Delete", tree, path="builder/x") is None


def test_absolute_and_home_patterns(tree: Path) -> None:
    home = Path.home()
    r = rules(deny=["Read(~/.ssh/**)", f"Read({tree}/sub/**)"])
    assert action(r, "Read", tree, path=str(home / ".ssh" / "id_rsa")) == "deny"
    assert action(r, "Read", tree, path="sub/notes.txt") == "deny"
    assert action(r, "Read", tree, path="docs/notes.txt") is None


def test_search_tools_without_a_path_search_the_root(tree: Path) -> None:
    r = rules(ask=["Grep(**)"], deny=["List(docs)"])
    assert action(r, "Grep", tree, pattern="TODO") == "ask"
    assert action(r, "List", tree, path="docs") == "deny"
    assert action(r, "List", tree) is None


def test_a_call_without_a_usable_path_matches_only_bare_rules(tree: Path) -> None:
    r = rules(deny=["Read(.env)"], allow=["Write(**)"])
    assert action(r, "Read", tree, path=3) is None
    assert action(r, "Write", tree) is None
    assert action(r, "Read", tree, path="a\0b") is None
    assert action(rules(deny=["Read"]), "Read", tree, path=3) == "deny"


# --- web ---


def test_webfetch_matches_the_host_as_a_glob(tmp_path: Path) -> None:
    r = rules(allow=["WebFetch(*.python.org)"], deny=["WebFetch(evil.example)"])
    assert action(r, "WebFetch", tmp_path, url="https://docs.python.org/3/") == "allow"
    assert action(r, "WebFetch", tmp_path, url="https://a.b.python.org:8443/x") == "allow"
    assert action(r, "WebFetch", tmp_path, url="https://python.org/") is None
    assert action(r, "WebFetch", tmp_path, url="https://python.org.evil.example/") is None
    assert action(r, "WebFetch", tmp_path, url="HTTP://EVIL.EXAMPLE./path") == "deny"
    assert action(r, "WebFetch", tmp_path, url="not a url") is None


def test_websearch_matches_the_query_ignoring_case(tmp_path: Path) -> None:
    r = rules(deny=["WebSearch(*password*)"])
    assert action(r, "WebSearch", tmp_path, query="reset my PASSWORD please") == "deny"
    assert action(r, "WebSearch", tmp_path, query="python asyncio") is None


def test_merged_rules_keep_every_rule_and_its_file(tmp_path: Path) -> None:
    user = PermissionRules.parse(allow=["Read"], source=Path("/u/koda.toml"))
    project = PermissionRules.parse(deny=["Read(.env)"], source=Path("/p/.koda/koda.toml"))
    both = user.merged(project)
    match = both.decide("Read", {"path": ".env"}, tmp_path)
    assert match is not None and match.action == "deny"
    assert match.rule.where() == "Read(.env) in /p/.koda/koda.toml"
    assert not PermissionRules()
    assert PermissionRules().decide("Read", {"path": ".env"}, tmp_path) is None
