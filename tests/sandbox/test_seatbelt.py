"""The Seatbelt profile as text: which paths land in which rule, in which order.

No macOS is needed: the profile is read back with a small SBPL reader (strings, regexes,
comments, nesting) and the rules are checked as data.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from koda.sandbox.bwrap import STAGE2
from koda.sandbox.policy import Network, SandboxPolicy, build_policy
from koda.sandbox.seatbelt import SANDBOX_EXEC, sbpl_string, seatbelt_argv, seatbelt_profile

Form = str | list["Form"]


class Text(str):
    """A string literal read from the profile (as opposed to a symbol)."""


def read_sbpl(text: str) -> list[Form]:
    """The top-level forms of a profile. Fails on unbalanced parentheses or strings."""
    stack: list[list[Form]] = [[]]
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ";":
            end = text.find("\n", i)
            i = len(text) if end == -1 else end
        elif ch.isspace():
            i += 1
        elif ch == "(":
            stack.append([])
            i += 1
        elif ch == ")":
            assert len(stack) > 1, f"a ) without its ( at {i}"
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif ch == '"' or text.startswith('#"', i):
            value, i = _read_string(text, i + (2 if ch == "#" else 1))
            stack[-1].append(Text(value))
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in '()";':
                i += 1
            stack[-1].append(text[start:i])
    assert len(stack) == 1, "a ( is never closed"
    return stack[0]


def _read_string(text: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while True:
        assert i < len(text), "a string is never closed"
        ch = text[i]
        if ch == "\\":
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1


def rules(profile: str) -> list[tuple[str, tuple[str, ...], list[Form]]]:
    """Each (allow|deny OPERATIONS... FILTERS...) as (action, operations, filters)."""
    found = []
    for form in read_sbpl(profile):
        assert isinstance(form, list)
        if form[0] in ("allow", "deny"):
            ops = tuple(x for x in form[1:] if isinstance(x, str) and not isinstance(x, Text))
            filters = [x for x in form[1:] if isinstance(x, list)]
            found.append((str(form[0]), ops, filters))
    return found


def paths_in(profile: str, action: str, operation: str, kind: str = "subpath") -> list[str]:
    return [
        str(f[1])
        for act, ops, filters in rules(profile)
        if act == action and operation in ops
        for f in filters
        if f[0] == kind
    ]


def index_of(profile: str, action: str, operation: str, path: str) -> int:
    """Where, among the rules, the last one giving `action` on `path` for `operation` is."""
    hits = [
        n
        for n, (act, ops, filters) in enumerate(rules(profile))
        if act == action and operation in ops and any(str(f[1]) == path for f in filters)
    ]
    assert hits, f"no ({action} {operation} … {path})"
    return hits[-1]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    for folder in (".ssh", ".aws", ".cache", ".npm", ".config/gh"):
        (home / folder).mkdir(parents=True)
    (home / ".netrc").write_text("machine x\n")
    project = tmp_path / "project"
    (project / ".git" / "hooks").mkdir(parents=True)
    (project / ".git" / "config").write_text("[core]\n")
    koda_home = tmp_path / "koda-home"
    koda_home.mkdir()
    tmp = tmp_path / "session" / "tmp"
    tmp.mkdir(parents=True)
    return {"home": home, "project": project, "koda": koda_home, "tmp": tmp}


def make_policy(world: dict[str, Path], network: Network | None = None) -> SandboxPolicy:
    return build_policy(
        world["project"], world["tmp"], koda_dirs=[world["koda"]], home=world["home"],
        network=network,
    )  # fmt: skip


def network(tmp_path: Path) -> Network:
    return Network(41001, 41002, tmp_path / "http.sock", tmp_path / "socks.sock")


def test_starts_closed(world: dict[str, Path]) -> None:
    forms = read_sbpl(seatbelt_profile(make_policy(world)))
    assert forms[0] == ["version", "1"]
    assert forms[1] == ["deny", "default"]


def test_every_writable_place_is_allowed(world: dict[str, Path]) -> None:
    policy = make_policy(world)
    profile = seatbelt_profile(policy)
    allowed = paths_in(profile, "allow", "file-write*")
    assert str(policy.project_root) in allowed
    assert str(world["tmp"]) in allowed
    assert policy.writable  # the caches made in the fixture
    for path in policy.writable:
        assert str(path) in allowed
    assert str(world["home"] / ".cache") in allowed
    # Writes go nowhere else: not the home folder, not the real /tmp.
    assert str(world["home"]) not in allowed
    assert "/tmp" not in allowed
    assert "/" not in allowed


def test_reads_everywhere_and_devices_writable(world: dict[str, Path]) -> None:
    profile = seatbelt_profile(make_policy(world))
    assert ("allow", ("file-read*",), []) in rules(profile)
    devices = paths_in(profile, "allow", "file-write*", kind="literal")
    assert {"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/urandom"} <= set(devices)


def test_protected_paths_are_denied_after_the_allows(world: dict[str, Path]) -> None:
    policy = make_policy(world)
    profile = seatbelt_profile(policy)
    denied = paths_in(profile, "deny", "file-write*")
    expected = [
        world["home"] / ".ssh", world["home"] / ".aws", world["home"] / ".config" / "gh",
        world["home"] / ".netrc", world["project"] / ".git" / "config",
        world["project"] / ".git" / "hooks", world["project"] / ".koda",
    ]  # fmt: skip
    for path in expected:
        assert path.resolve() in policy.write_protected
        assert str(path.resolve()) in denied
    last_allow = index_of(profile, "allow", "file-write*", str(policy.project_root))
    for path in policy.write_protected:
        assert index_of(profile, "deny", "file-write*", str(path)) > last_allow


def test_hidden_paths_can_be_neither_read_nor_written(world: dict[str, Path]) -> None:
    policy = make_policy(world)
    profile = seatbelt_profile(policy)
    koda = str(world["koda"].resolve())
    assert koda in paths_in(profile, "deny", "file-read*")
    assert koda in paths_in(profile, "deny", "file-write*")
    assert index_of(profile, "deny", "file-read*", koda) > index_of(
        profile, "allow", "file-read*", "/dev/ptmx"
    )
    assert koda not in paths_in(profile, "allow", "file-read*")


def test_protected_paths_cannot_be_moved_away_with_a_parent(world: dict[str, Path]) -> None:
    profile = seatbelt_profile(make_policy(world))
    pinned = paths_in(profile, "deny", "file-write-unlink", kind="literal")
    assert str(world["project"].resolve() / ".git") in pinned
    assert str(world["home"].resolve()) in pinned
    assert str(world["koda"].resolve().parent) in pinned
    assert "/" not in pinned


def test_a_project_inside_a_hidden_folder_stays_usable(tmp_path: Path) -> None:
    koda_home = tmp_path / "koda-home"
    project = koda_home / "work" / "project"
    (project / ".git" / "hooks").mkdir(parents=True)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    policy = build_policy(project, tmp, koda_dirs=[koda_home], home=tmp_path / "nohome")
    profile = seatbelt_profile(policy)
    hidden_at = index_of(profile, "deny", "file-write*", str(koda_home.resolve()))
    assert index_of(profile, "allow", "file-write*", str(project.resolve())) > hidden_at
    assert index_of(profile, "allow", "file-read*", str(project.resolve())) > hidden_at
    hooks = str(project.resolve() / ".git" / "hooks")
    assert index_of(profile, "deny", "file-write*", hooks) > index_of(
        profile, "allow", "file-write*", str(project.resolve())
    )


def test_network_only_to_the_two_proxy_ports(world: dict[str, Path], tmp_path: Path) -> None:
    profile = seatbelt_profile(make_policy(world, network(tmp_path)))
    outbound = [r for r in rules(profile) if "network-outbound" in r[1] or "network*" in r[1]]
    assert outbound == [
        ("deny", ("network*",), []),
        ("allow", ("network-outbound",), [["remote", "tcp", "localhost:41001"]]),
        ("allow", ("network-outbound",), [["remote", "tcp", "localhost:41002"]]),
    ]
    assert "unix-socket" not in profile
    assert "network-bind" not in profile and "network-inbound" not in profile


def test_no_network_rule_without_a_network(world: dict[str, Path]) -> None:
    profile = seatbelt_profile(make_policy(world))
    network_rules = [r for r in rules(profile) if any(op.startswith("network") for op in r[1])]
    assert network_rules == [("deny", ("network*",), [])]
    assert "remote" not in profile
    assert "trustd" not in profile


def test_quotes_and_backslashes_in_paths_are_escaped(world: dict[str, Path]) -> None:
    odd = world["project"].parent / 'we "said" \\ (hi) ; x'
    odd.mkdir()
    policy = replace(make_policy(world), writable=(odd,), hidden=(odd / "inner",))
    profile = seatbelt_profile(policy)
    assert str(odd) in paths_in(profile, "allow", "file-write*")
    assert str(odd / "inner") in paths_in(profile, "deny", "file-read*")
    assert sbpl_string(str(odd)) in profile
    assert sbpl_string('a"b\\c') == '"a\\"b\\\\c"'


def test_linked_paths_are_covered_resolved_too(world: dict[str, Path], tmp_path: Path) -> None:
    # Like macOS's /tmp -> /private/tmp: the kernel checks the resolved name.
    real = tmp_path / "private" / "tmp"
    real.mkdir(parents=True)
    link = tmp_path / "tmp-link"
    link.symlink_to(real)
    secret = tmp_path / "secret-link"
    secret.symlink_to(world["koda"])
    policy = replace(make_policy(world), tmp_dir=link, hidden=(secret,))
    profile = seatbelt_profile(policy)
    allowed = paths_in(profile, "allow", "file-write*")
    assert str(link) in allowed and str(real) in allowed
    hidden = paths_in(profile, "deny", "file-read*")
    assert str(secret) in hidden and os.path.realpath(secret) in hidden


def test_parentheses_balance_for_every_shape(world: dict[str, Path], tmp_path: Path) -> None:
    for net in (None, network(tmp_path)):
        profile = seatbelt_profile(make_policy(world, net))
        read_sbpl(profile)  # asserts balance
        outside_strings = _strip_strings(profile)
        assert outside_strings.count("(") == outside_strings.count(")")
    with pytest.raises(AssertionError):
        read_sbpl("(allow file-read*")


def _strip_strings(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == '"':
            _, i = _read_string(text, i + 1)
        elif text[i] == ";":
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def test_argv_runs_stage2_for_the_limits_only(world: dict[str, Path], tmp_path: Path) -> None:
    policy = make_policy(world, network(tmp_path))
    argv = seatbelt_argv(policy, ["/bin/sh", "-c", "echo hi"])
    assert argv[:2] == [SANDBOX_EXEC, "-p"]
    assert argv[2] == seatbelt_profile(policy)
    assert argv[3:7] == [sys.executable, "-I", "-S", str(STAGE2)]
    split = argv.index("--")
    options = argv[7:split]
    assert "--bridge" not in options
    assert f"cpu={policy.limits.cpu_seconds}" in options
    assert not any(o.startswith("nproc=") for o in options)
    assert argv[split + 1 :] == ["/bin/sh", "-c", "echo hi"]
