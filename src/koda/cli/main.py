"""The `koda` command. Start-up is hot: heavy modules are imported only where needed."""

from __future__ import annotations

import os
import sys

from koda._version import __version__

SUBCOMMANDS = ("sessions", "demo", "auth", "undo", "doctor")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        print(f"koda {__version__}")
        return 0
    _safe_streams()
    _quiet_logs()
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("koda: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`koda ... | head`): stop quietly, like other tools.
        import contextlib

        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get("KODA_DEBUG"):
            raise
        print(f"koda: internal error: {type(exc).__name__}: {exc} (KODA_DEBUG=1 shows details)",
              file=sys.stderr)  # fmt: skip
        return 1


def _dispatch(args: list[str]) -> int:
    if args and args[0] in SUBCOMMANDS:
        return _subcommand(args[0], args[1:])
    from koda.cli.args import parse_main

    options = parse_main(args)  # --help and usage errors exit here, before the engine loads
    from koda.cli.headless import run_headless

    return run_headless(options)


def _subcommand(name: str, rest: list[str]) -> int:
    if name == "undo":
        from koda.cli.undo_cmd import run_undo

        return run_undo(rest)
    if name == "auth":
        from koda.cli.auth_cmd import run_auth

        return run_auth(rest)
    if name == "sessions":
        from koda.cli.sessions_cmd import run_sessions

        return run_sessions(rest)
    if name == "doctor":
        from koda.cli.doctor import run_doctor

        return run_doctor(rest)
    from koda.cli.demo import run_demo

    return run_demo(rest)


def _quiet_logs() -> None:
    """Errors the engine catches and reports are logged with tracebacks; those are for KODA_DEBUG,
    not the user's terminal (with no handler, logging would print them to stderr)."""
    if not os.environ.get("KODA_DEBUG"):
        import logging

        logger = logging.getLogger("koda")
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _safe_streams() -> None:
    """Never crash on a terminal that cannot show a character."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
