"""Path confinement and argument validation: the checks every tool relies on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from koda.tools.args import one_line, opt_bool, opt_int, opt_str, req_str
from koda.tools.base import ToolError
from koda.tools.paths import (
    check_parent_unmoved,
    display_path,
    fs_errors,
    open_parent,
    resolve_in_project,
)


def test_relative_path_resolves_inside(root: Path) -> None:
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("x\n")
    assert resolve_in_project(root, "src/app.py") == (root / "src" / "app.py").resolve()


def test_absolute_path_inside_is_accepted(root: Path) -> None:
    target = root / "a.txt"
    target.write_text("a")
    assert resolve_in_project(root, str(target)) == target.resolve()


def test_missing_file_inside_is_allowed_unless_required(root: Path) -> None:
    assert resolve_in_project(root, "new/dir/file.txt") == root.resolve() / "new/dir/file.txt"
    with pytest.raises(ToolError, match="not found"):
        resolve_in_project(root, "new/dir/file.txt", must_exist=True)


def test_root_itself_is_inside(root: Path) -> None:
    assert resolve_in_project(root, ".") == root.resolve()
    assert display_path(root, root.resolve()) == "."


@pytest.mark.parametrize(
    "raw", ["..", "../outside/secret.txt", "a/../../outside", "missing/../../x"]
)
def test_dotdot_escapes_are_refused(root: Path, outside: Path, raw: str) -> None:
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, raw)


def test_absolute_path_elsewhere_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, str(outside / "secret.txt"))
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, "/etc/passwd")


def test_symlinked_file_pointing_out_is_refused(root: Path, outside: Path) -> None:
    (root / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, "link.txt")


def test_path_through_symlinked_dir_pointing_out_is_refused(root: Path, outside: Path) -> None:
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, "linkdir/secret.txt")
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, "linkdir/not-yet-created.txt")


def test_symlink_within_project_resolves_to_its_target(root: Path) -> None:
    (root / "real.txt").write_text("r")
    (root / "alias.txt").symlink_to(root / "real.txt")
    assert resolve_in_project(root, "alias.txt") == (root / "real.txt").resolve()


def test_project_root_reached_through_a_symlink(tmp_path: Path, root: Path) -> None:
    (root / "a.txt").write_text("a")
    via = tmp_path / "via-link"
    via.symlink_to(root, target_is_directory=True)
    resolved = resolve_in_project(via, "a.txt")
    assert resolved == (root / "a.txt").resolve()
    assert display_path(via, resolved) == "a.txt"


@pytest.mark.parametrize("raw", [None, "", "   ", 5, ["a"], {"p": 1}])
def test_missing_empty_or_non_string_path_is_refused(root: Path, raw: object) -> None:
    with pytest.raises(ToolError, match="path is required"):
        resolve_in_project(root, raw)


def test_nul_byte_in_path_is_a_tool_error(root: Path) -> None:
    with pytest.raises(ToolError, match="Invalid path"):
        resolve_in_project(root, "a\0b")


def test_display_path_is_project_relative_posix(root: Path) -> None:
    assert display_path(root, root.resolve() / "src" / "x.py") == "src/x.py"
    assert display_path(root, Path("/elsewhere/x")) == "/elsewhere/x"


def test_fs_errors_turns_os_errors_into_sentences() -> None:
    with pytest.raises(ToolError, match=r"Permission denied: a\.txt"), fs_errors("a.txt"):
        raise PermissionError(13, "Permission denied")
    with pytest.raises(ToolError, match="is a directory"), fs_errors("d"):
        raise IsADirectoryError(21, "Is a directory")
    with pytest.raises(ToolError, match="Could not access x: No space"), fs_errors("x"):
        raise OSError(28, "No space left on device")
    with pytest.raises(ToolError, match="Could not convert the text of t"), fs_errors("t"):
        "\udc80".encode()


# Argument helpers: what a model sends is checked here before any tool logic runs.


def test_req_str_reports_missing_and_wrong_type() -> None:
    with pytest.raises(ToolError, match="Missing required argument 'path'"):
        req_str({}, "path")
    with pytest.raises(ToolError, match="Missing required argument 'path'"):
        req_str({"path": None}, "path")
    with pytest.raises(ToolError, match="'path' must be a string, not an integer"):
        req_str({"path": 3}, "path")
    with pytest.raises(ToolError, match="'command' must not be empty"):
        req_str({"command": "  "}, "command", allow_empty=False)
    assert req_str({"content": ""}, "content") == ""


def test_opt_str_defaults_and_type() -> None:
    assert opt_str({}, "path", ".") == "."
    assert opt_str({"path": None}, "path") is None
    assert opt_str({"path": "src"}, "path", ".") == "src"
    with pytest.raises(ToolError, match="'glob' must be a string, not a list"):
        opt_str({"glob": ["*.py"]}, "glob")


@pytest.mark.parametrize(
    ("value", "expected"), [(5, 5), ("5", 5), (" 12 ", 12), (7.0, 7), (None, 1)]
)
def test_opt_int_accepts_numbers_and_numeric_strings(value: Any, expected: int) -> None:
    assert opt_int({"offset": value}, "offset", 1) == expected


@pytest.mark.parametrize("value", ["five", "5.5", 2.5, True, [1], {}])
def test_opt_int_rejects_non_integers(value: Any) -> None:
    with pytest.raises(ToolError, match="'offset' must be an integer"):
        opt_int({"offset": value}, "offset", 1)


def test_opt_int_enforces_bounds() -> None:
    with pytest.raises(ToolError, match="'timeout' must be at least 1"):
        opt_int({"timeout": 0}, "timeout", 120, min=1, max=600)
    with pytest.raises(ToolError, match="'timeout' must be at most 600"):
        opt_int({"timeout": "601"}, "timeout", 120, min=1, max=600)
    assert opt_int({"timeout": 600}, "timeout", 120, min=1, max=600) == 600


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("FALSE", False), (None, False)],
)
def test_opt_bool_accepts_booleans_and_their_words(value: Any, expected: bool) -> None:
    assert opt_bool({"flag": value}, "flag", False) is expected


@pytest.mark.parametrize("value", ["yes", "1", 1, 0, "maybe", []])
def test_opt_bool_rejects_everything_else(value: Any) -> None:
    with pytest.raises(ToolError, match="'flag' must be a boolean"):
        opt_bool({"flag": value}, "flag")


def test_one_line_shortens_for_summaries() -> None:
    assert one_line("pytest -q") == "pytest -q"
    assert one_line("line one\nline two") == "line one…"
    assert one_line("x" * 100, limit=10) == "x" * 10 + "…"
    assert one_line(None) == "None"


def test_realpath_is_used_not_lexical_normalisation(root: Path, outside: Path) -> None:
    # "linkdir/.." lexically is the project root, but really it is the link target's parent.
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    real = Path(os.path.realpath(root / "linkdir" / ".."))
    assert not real.is_relative_to(root.resolve())
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, "linkdir/../outside/secret.txt")


# keep_link: the link itself, for Delete


def test_keep_link_keeps_a_link_in_the_last_component(root: Path, outside: Path) -> None:
    (root / "out").symlink_to(outside / "secret.txt")
    assert resolve_in_project(root, "out", keep_link=True) == root.resolve() / "out"
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, "out")


def test_keep_link_still_resolves_the_directories_on_the_way(root: Path, outside: Path) -> None:
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ToolError, match="outside the project"):
        resolve_in_project(root, "escape/secret.txt", keep_link=True)
    for raw in ["..", "a/../..", "."]:
        resolved = Path(os.path.realpath(root / raw))
        if resolved.is_relative_to(root.resolve()):
            assert resolve_in_project(root, raw, keep_link=True) == resolved
        else:
            with pytest.raises(ToolError, match="outside the project"):
                resolve_in_project(root, raw, keep_link=True)


# open_parent: reaching a directory without following links


def test_open_parent_gives_the_directory_and_creates_missing_ones(root: Path) -> None:
    target = root.resolve() / "a" / "b" / "c.txt"
    with open_parent(root, target, create=True) as fd:
        assert os.path.samestat(os.fstat(fd), os.stat(root / "a" / "b"))
        check_parent_unmoved(root, target, fd)


def test_open_parent_refuses_a_link_on_the_way(root: Path, outside: Path) -> None:
    (root / "sub").symlink_to(outside, target_is_directory=True)
    target = root.resolve() / "sub" / "x.txt"  # as if it had been resolved before the swap
    with (
        pytest.raises(ToolError, match="'sub' was replaced by a symbolic link"),
        open_parent(root, target),
    ):
        pass


def test_open_parent_reports_a_file_on_the_way_as_an_os_error(root: Path) -> None:
    (root / "plain").write_text("x")
    with pytest.raises(NotADirectoryError), open_parent(root, root.resolve() / "plain" / "x"):
        pass


def test_open_parent_refuses_the_root_itself(root: Path) -> None:
    with pytest.raises(ToolError, match="project root"), open_parent(root, root.resolve()):
        pass


def test_check_parent_unmoved_sees_a_rename(root: Path, outside: Path) -> None:
    (root / "sub").mkdir()
    target = root.resolve() / "sub" / "x.txt"
    with open_parent(root, target) as fd:
        (root / "sub").rename(root / "moved")
        with pytest.raises(ToolError, match="moved or replaced while the tool ran"):
            check_parent_unmoved(root, target, fd)
        (root / "sub").symlink_to(outside, target_is_directory=True)
        with pytest.raises(ToolError, match="moved or replaced while the tool ran"):
            check_parent_unmoved(root, target, fd)
