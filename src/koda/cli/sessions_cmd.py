"""`koda sessions list|show|delete|export`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from koda.cli.args import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from koda.paths import database_path
from koda.store import SessionRow, SessionSummary, Store, StoreError
from koda.store.sessions import AmbiguousSessionError, SessionNotFoundError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="koda sessions", description="Saved sessions.")
    sub = p.add_subparsers(dest="action", required=True, metavar="{list,show,delete,export}")
    ls = sub.add_parser("list", help="sessions of this project, newest first")
    ls.add_argument("--all", action="store_true", help="sessions of every project")
    ls.add_argument("--limit", type=int, default=30)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--project-root", type=Path, metavar="DIR")
    show = sub.add_parser("show", help="details, token totals and cost of one session")
    show.add_argument("id", help="session id or a unique prefix")
    show.add_argument("--json", action="store_true", help="print JSON")
    rm = sub.add_parser("delete", help="delete sessions and their messages")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    ex = sub.add_parser("export", help="write a session as Markdown or JSON")
    ex.add_argument("id")
    ex.add_argument("--format", choices=("markdown", "md", "json"), default="markdown")
    ex.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here instead of stdout"
    )
    return p


def run_sessions(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    try:
        db = Store.open(database_path())
    except StoreError as exc:
        print(f"koda: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        handler = {"list": _list, "show": _show, "delete": _delete, "export": _export}[ns.action]
        return handler(db, ns)
    except (SessionNotFoundError, AmbiguousSessionError) as exc:
        print(f"koda: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        db.close()


def _list(db: Store, ns: argparse.Namespace) -> int:
    root = None if ns.all else str((ns.project_root or Path.cwd()).resolve())
    rows = db.sessions.list(root, limit=max(1, ns.limit))
    if ns.json:
        print(json.dumps([_summary_json(r) for r in rows], indent=2))
        return EXIT_OK
    if not rows:
        where = "anywhere" if ns.all else "for this project (try --all)"
        print(f"No sessions {where}.")
        return EXIT_OK
    for r in rows:
        s = r.session
        when = s.accessed_at[:16].replace("T", " ")
        where = f"  [{s.project_root}]" if ns.all else ""
        print(f"{s.id[:8]}  {when}  {r.message_count:>5} msgs  {s.title or '(untitled)'}{where}")
    return EXIT_OK


def _summary_json(r: SessionSummary) -> dict[str, object]:
    s = r.session
    return {
        "id": s.id,
        "title": s.title,
        "project_root": s.project_root,
        "updated": s.accessed_at,
        "messages": r.message_count,
        "tokens": r.total_tokens,
    }


def _show(db: Store, ns: argparse.Namespace) -> int:
    s = db.sessions.find(ns.id)
    usage = db.sessions.usage(s.id)
    count = db.messages.count(s.id)
    cost = "unknown" if usage.cost_usd is None or usage.unpriced_turns else f"${usage.cost_usd:.4f}"
    if ns.json:
        print(
            json.dumps(
                {"session": s.__dict__, "messages": count, "usage": usage.__dict__, "cost": cost},
                indent=2,
            )
        )
        return EXIT_OK
    print(f"{s.title or '(untitled)'}\n"
          f"  id:        {s.id}\n  project:   {s.project_root}\n"
          f"  created:   {s.created_at}\n  last used: {s.accessed_at}\n"
          f"  model:     {s.provider or '?'} / {s.model or '?'}\n  mode:      {s.mode}\n"
          f"  messages:  {count}\n"
          f"  tokens:    {usage.prompt} in · {usage.completion} out · "
          f"{usage.cache_read} cache read · {usage.cache_write} cache write · "
          f"{usage.thinking} thinking\n"
          f"  cost:      {cost}")  # fmt: skip
    return EXIT_OK


def _delete(db: Store, ns: argparse.Namespace) -> int:
    rows: list[SessionRow] = [db.sessions.find(i) for i in ns.ids]
    if not ns.yes and sys.stdin is not None and sys.stdin.isatty():
        names = ", ".join(f"{r.id[:8]} ({r.title or 'untitled'})" for r in rows)
        try:
            answer = input(f"Delete {names}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return EXIT_OK
    for r in rows:
        db.sessions.delete(r.id)
        print(f"Deleted session {r.id[:8]} ({r.title or 'untitled'}).")
    return EXIT_OK


def _export(db: Store, ns: argparse.Namespace) -> int:
    from koda.cli.export import to_json, to_markdown

    s = db.sessions.find(ns.id)
    messages = db.messages.load(s.id, include_incomplete=True)
    render = to_json if ns.format == "json" else to_markdown
    text = render(s, messages, db.sessions.usage(s.id))
    if ns.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        ns.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"koda: cannot write {ns.output}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Exported session {s.id[:8]} to {ns.output}", file=sys.stderr)
    return EXIT_OK
