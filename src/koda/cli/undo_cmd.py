"""`koda undo`: put the project's files back as they were before the last turn that changed them."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from koda.cli.args import EXIT_ERROR, EXIT_OK
from koda.paths import data_dir
from koda.undo import Checkpoints, NothingToUndoError, UndoError, UndoResult
from koda.undo.checkpoints import MAX_FILE_BYTES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="koda undo",
        description="Restore the project's files to the last checkpoint Koda took before a turn "
        "changed them. Run it again to go further back.",
    )
    p.add_argument("--project-root", type=Path, metavar="DIR", help="the project (default: here)")
    p.add_argument("--list", action="store_true", help="show the checkpoints, newest first")
    return p


def run_undo(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    root = (ns.project_root or Path.cwd()).expanduser()
    if not root.is_dir():
        print(f"koda: {root} is not a directory", file=sys.stderr)
        return EXIT_ERROR
    checkpoints = Checkpoints(root, data_dir())
    try:
        if ns.list:
            return _list(checkpoints)
        result = asyncio.run(checkpoints.undo())
    except NothingToUndoError as exc:
        print(f"koda: nothing to undo. {exc}", file=sys.stderr)
        return EXIT_ERROR
    except UndoError as exc:
        print(f"koda: undo failed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    _report(result)
    return EXIT_OK


def _list(checkpoints: Checkpoints) -> int:
    stack = asyncio.run(checkpoints.stack())
    if not stack:
        print("No checkpoints for this project.")
    for c in stack:
        print(f"{c.id[:10]}  {c.created_at[:19].replace('T', ' ')}  {c.label}")
    return EXIT_OK


def _report(result: UndoResult) -> None:
    count = len(result.changed)
    files = "file" if count == 1 else "files"
    print(f"Restored {count} {files} to the checkpoint before: {result.restored_to}")
    for path in result.changed:
        how = "restored"
        if path in result.deleted:
            how = "deleted"
        elif path in result.recreated:
            how = "recreated"
        print(f"  {how:<9}  {path}")
    limit = MAX_FILE_BYTES // (1024 * 1024)
    for path in result.kept:
        print(f"  {'kept':<9}  {path} (over {limit} MB at the checkpoint, so not saved)")
