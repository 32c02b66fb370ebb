"""koda.toml: reading the user's and the project's files, merging them, and every way to get one
wrong, each said with the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from koda.config_file import ConfigFileError, FileSettings, SandboxSettings, load_settings


@pytest.fixture
def user(tmp_path: Path) -> Path:
    path = tmp_path / "user"
    path.mkdir()
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    (path / ".koda").mkdir(parents=True)
    return path


def write_user(user: Path, text: str) -> Path:
    path = user / "koda.toml"
    path.write_text(text, encoding="utf-8")
    return path


def write_project(root: Path, text: str) -> Path:
    path = root / ".koda" / "koda.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error(root: Path, user: Path) -> str:
    with pytest.raises(ConfigFileError) as info:
        load_settings(root, user)
    return str(info.value)


def test_no_files_means_defaults(root: Path, user: Path) -> None:
    settings = load_settings(root, user)
    assert settings == FileSettings.empty()
    assert not settings.permissions and settings.sources == ()
    assert settings.sandbox == SandboxSettings()


def test_the_example_from_the_docs_loads(root: Path, user: Path) -> None:
    path = write_user(
        user,
        """
[permissions]
allow = ["Bash(npm test*)", "Edit(docs/**)", "WebFetch(*.python.org)"]
ask   = ["Bash(git push*)"]
deny  = ["Read(.env)", "Bash(curl *)", "Delete"]

[network]
allow = ["internal.example.com", "*.corp.example.com"]   # extra egress hosts

[sandbox]
memory_mb = 4096
cpu_seconds = 300
processes = 256
output_mb = 64
writable = ["~/.local/share/pnpm"]
""",
    )
    settings = load_settings(root, user)
    assert [r.text for r in settings.permissions.allow] == [
        "Bash(npm test*)",
        "Edit(docs/**)",
        "WebFetch(*.python.org)",
    ]
    assert [r.tool for r in settings.permissions.deny] == ["Read", "Bash", "Delete"]
    assert all(r.source == path for r in settings.permissions.deny)
    assert settings.network_allow == ("internal.example.com", "*.corp.example.com")
    assert settings.sandbox == SandboxSettings(
        4096, 300, 256, 64, (Path.home() / ".local/share/pnpm",)
    )
    assert settings.sources == (path,)


def test_both_files_merge(root: Path, user: Path) -> None:
    user_path = write_user(
        user,
        '[permissions]\nallow = ["Read"]\n[network]\nallow = ["a.example.com", "B.example.com"]\n'
        "[sandbox]\nmemory_mb = 4096\ncpu_seconds = 300\n",
    )
    project_path = write_project(
        root,
        '[permissions]\ndeny = ["Read(.env)"]\n'
        '[network]\nallow = ["b.example.com", "c.example.org"]\n'
        "[sandbox]\nmemory_mb = 1024\nprocesses = 64\n",
    )
    settings = load_settings(root, user)
    assert settings.sources == (user_path, project_path)
    # Every rule of both applies: the project's deny beats the user's allow.
    match = settings.permissions.decide("Read", {"path": ".env"}, root)
    assert match is not None and match.action == "deny" and match.rule.source == project_path
    assert settings.network_allow == ("a.example.com", "b.example.com", "c.example.org")
    assert (settings.sandbox.memory_mb, settings.sandbox.cpu_seconds) == (1024, 300)
    assert settings.sandbox.processes == 64 and settings.sandbox.output_mb is None


def test_the_project_file_alone_is_read(root: Path, user: Path) -> None:
    path = write_project(root, '[permissions]\nask = ["WebSearch"]\n')
    settings = load_settings(root, user)
    assert settings.sources == (path,)
    assert [r.tool for r in settings.permissions.ask] == ["WebSearch"]


def test_user_dir_defaults_to_koda_home(root: Path, private_koda_home: Path) -> None:
    path = write_user(private_koda_home, '[network]\nallow = ["x.example.com"]\n')
    assert load_settings(root).sources == (path,)


def test_toml_syntax_errors_keep_line_and_column(root: Path, user: Path) -> None:
    path = write_user(user, '[permissions]\nallow = ["Read"]\ndeny = ["Read(.env)" "Delete"]\n')
    message = error(root, user)
    assert message.startswith(f"{path}: line 3, column ")
    assert "not valid TOML" in message


def test_an_unclosed_array_points_at_the_end(root: Path, user: Path) -> None:
    path = write_project(root, '[permissions]\nallow = ["Read"\n')
    assert error(root, user).startswith(f"{path}: line 2: not valid TOML")


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("[permisions]\nallow = []\n", 1, "unknown table [permisions]: did you mean permissions?"),
        ("[sandbox]\nmemory = 1\n", 2, "unknown key 'memory' in [sandbox]: did you mean memory_mb"),
        ("[network]\n\nallowed = []\n", 3, "key 'allowed' in [network]: did you mean allow?"),
        ('allow = ["Read"]\n', 1, "'allow' belongs in a table: write it below [permissions] or"),
        ("colour = 1\n", 1, "unknown key 'colour'"),
        ("network = 3\n", 1, "network must be a table"),
        ('[permissions]\nallow = "Read"\n', 2, "permissions.allow must be a list of strings"),
        ("[network]\nallow = [1]\n", 2, "network.allow must be a list of strings"),
        ("[sandbox]\ncpu_seconds = 0\n", 2, "sandbox.cpu_seconds must be a whole number above 0"),
        ("[sandbox]\noutput_mb = true\n", 2, "sandbox.output_mb must be a whole number above 0"),
        ('[sandbox]\nprocesses = "many"\n', 2, "must be a whole number above 0"),
        ("[sandbox]\nmemory_mb = 1.5\n", 2, "must be a whole number above 0"),
        ("sandbox.memory_mb = -1\n", 1, "sandbox.memory_mb must be a whole number above 0"),
    ],
)
def test_schema_errors_name_the_line(
    root: Path, user: Path, text: str, line: int, expected: str
) -> None:
    path = write_user(user, text)
    message = error(root, user)
    assert message.startswith(f"{path}: line {line}: "), message
    assert expected in message


def test_a_bad_rule_is_an_error_with_its_line(root: Path, user: Path) -> None:
    path = write_project(root, '[permissions]\ndeny = [\n  "Read(.env)",\n  "Bsh(rm *)",\n]\n')
    message = error(root, user)
    assert message.startswith(f"{path}: line 4: permissions.deny: unknown tool 'Bsh'")
    assert "did you mean Bash?" in message and "Known tools: Read" in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("Bash(npm test", "unbalanced parentheses"),
        ("TodoWrite(x)", "TodoWrite has nothing a pattern could match"),
    ],
)
def test_rules_that_cannot_work_are_errors(
    root: Path, user: Path, rule: str, expected: str
) -> None:
    write_user(user, f'[permissions]\nask = ["{rule}"]\n')
    assert expected in error(root, user)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://x.example.com/", "it is a URL"),
        ("*.com", "a wildcard needs at least two labels"),
        ("10.0.0.1", "IP address"),
        ("*", "a lone * would allow every host"),
    ],
)
def test_bad_egress_hosts_are_errors(root: Path, user: Path, host: str, expected: str) -> None:
    path = write_project(root, f'[network]\nallow = [\n  "ok.example.com",\n  "{host}",\n]\n')
    message = error(root, user)
    assert message.startswith(f"{path}: line 4: network.allow: ")
    assert expected in message


def test_hosts_are_normalised(root: Path, user: Path) -> None:
    write_user(user, '[network]\nallow = ["Internal.Example.COM.", "internal.example.com"]\n')
    assert load_settings(root, user).network_allow == ("internal.example.com",)


def test_writable_paths_only_come_from_the_user_file(root: Path, user: Path) -> None:
    path = write_project(root, '[sandbox]\nmemory_mb = 10\nwritable = ["/opt/cache"]\n')
    message = error(root, user)
    assert message.startswith(f"{path}: line 3: sandbox.writable is only read from your user")
    assert str(user / "koda.toml") in message
    assert "a repository cannot widen the sandbox" in message


def test_writable_paths_must_be_absolute(root: Path, user: Path) -> None:
    path = write_user(user, '[sandbox]\nwritable = ["/opt/cache", "rel/dir"]\n')
    message = error(root, user)
    assert message.startswith(f"{path}: line 2: sandbox.writable: 'rel/dir' is a relative path")


def test_writable_paths_expand_the_home_directory(root: Path, user: Path) -> None:
    write_user(user, '[sandbox]\nwritable = ["~/.cache/x/", "/opt//tools/../cache"]\n')
    writable = load_settings(root, user).sandbox.writable
    assert writable == (Path.home() / ".cache/x", Path("/opt/cache"))


def test_a_file_that_is_not_utf8_is_an_error(root: Path, user: Path) -> None:
    path = root / ".koda" / "koda.toml"
    path.write_bytes(b"[permissions]\n# caf\xe9\n")
    assert error(root, user) == f"{path}: line 2: is not UTF-8 text; save it as UTF-8"


def test_a_directory_in_place_of_the_file_is_an_error(root: Path, user: Path) -> None:
    (user / "koda.toml").mkdir()
    assert error(root, user) == f"{user / 'koda.toml'}: is a directory; koda.toml must be a file"


def test_a_koda_file_instead_of_a_folder_means_no_project_settings(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / ".koda").write_text("not a folder")
    assert load_settings(root, tmp_path / "nobody") == FileSettings.empty()


def test_an_empty_file_is_fine(root: Path, user: Path) -> None:
    path = write_project(root, "# nothing yet\n")
    settings = load_settings(root, user)
    assert settings.sources == (path,) and not settings.permissions
