"""Parsing the main command line (headless prompts)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from koda._version import __version__

if TYPE_CHECKING:
    from koda.engine.trust import TrustMode

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DESCRIPTION = "Koda: a personal AI coding agent for the terminal."
EPILOG = """\
commands:
  koda -p PROMPT            answer one prompt and exit (also: koda PROMPT, koda -p -, or pipe stdin)
  koda sessions ...         list, show, delete or export saved sessions
  koda auth ...             store, check or forget provider API keys
  koda undo                 take back the files the last changing turn touched
  koda demo                 watch a scripted run offline (no model needed)
  koda doctor               check the sandbox, egress proxy, ripgrep, keys and koda.toml

exit codes:
  0 done · 1 error (provider, tool loop, max turns, koda.toml) · 2 bad usage · 130 interrupted

environment:
  KODA_PROVIDER, KODA_MODEL, KODA_BASE_URL, KODA_MODE   defaults for the flags of the same name
  KODA_HOME                                            where sessions are stored

settings files (koda.toml: permission rules, extra egress hosts, sandbox limits):
  ~/.config/koda/koda.toml (or $KODA_HOME/koda.toml), then .koda/koda.toml in the project
"""


@dataclass(frozen=True)
class MainOptions:
    prompt: str
    output_format: str
    continue_last: bool
    resume: str | None
    mode: TrustMode | None  # asked for by --mode or KODA_MODE; None: Koda's default
    max_turns: int | None
    yes: bool
    provider: str | None
    model: str | None
    base_url: str | None
    max_tokens: int | None
    thinking_budget: int | None
    reasoning_effort: str | None
    project_root: Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="koda",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("words", nargs="*", metavar="PROMPT", help="the prompt (same as -p)")
    p.add_argument(
        "-p",
        "--prompt",
        nargs="?",
        const="-",
        metavar="PROMPT",
        help="run headless with this prompt; '-' or no value reads standard input",
    )
    p.add_argument(
        "--output-format",
        choices=("text", "json", "stream-json"),
        default="text",
        help="text: answer on stdout, progress on stderr; json: one result object; "
        "stream-json: one event per line",
    )
    p.add_argument(
        "-c",
        "--continue",
        dest="continue_last",
        action="store_true",
        help="continue the last session of this project",
    )
    p.add_argument(
        "-r", "--resume", metavar="ID", help="resume a session by id (a prefix is enough)"
    )
    p.add_argument(
        "--mode",
        type=_mode,
        help="trust mode: plan, safe or auto (default: auto where commands can run in the "
        "sandbox, else safe)",
    )
    p.add_argument(
        "--max-turns", type=_positive_int, metavar="N", help="stop after N model calls in this run"
    )
    p.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="approve every action that would otherwise need a yes",
    )
    p.add_argument("--provider", help="model provider (env KODA_PROVIDER)")
    p.add_argument("--model", help="model name (env KODA_MODEL)")
    p.add_argument("--base-url", help="provider base URL (env KODA_BASE_URL)")
    p.add_argument(
        "--max-tokens",
        type=_positive_int,
        metavar="N",
        help="the most tokens one reply may have (capped by the model's limit)",
    )
    p.add_argument(
        "--thinking-budget",
        type=_positive_int,
        metavar="N",
        help="let the model think first, with up to N tokens (Anthropic, Gemini)",
    )
    p.add_argument(
        "--reasoning-effort",
        choices=("minimal", "low", "medium", "high"),
        help="reasoning effort for models that take one (OpenAI-compatible)",
    )
    p.add_argument(
        "--project-root",
        type=Path,
        metavar="DIR",
        help="the project Koda works in (default: the current directory)",
    )
    p.add_argument("-V", "--version", action="version", version=f"koda {__version__}")
    return p  # fmt: skip


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _mode(text: str) -> TrustMode:
    from koda.engine.trust import parse_mode

    try:
        return parse_mode(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _explicit_mode(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> TrustMode | None:
    if ns.mode is not None:
        mode: TrustMode = ns.mode
        return mode
    text = os.environ.get("KODA_MODE")
    if not text:
        return None
    try:
        return _mode(text)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"KODA_MODE: {exc}")


def parse_main(argv: list[str]) -> MainOptions:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.resume is not None and not ns.resume.strip():
        parser.error("--resume needs a session id (or a prefix of one)")
    if ns.continue_last and ns.resume:
        parser.error("use either --continue or --resume, not both")
    mode = _explicit_mode(parser, ns)
    prompt = _prompt(parser, ns)
    root = (ns.project_root or Path.cwd()).expanduser()
    if not root.is_dir():
        parser.error(f"--project-root: not a directory: {root}")
    return MainOptions(
        prompt=prompt,
        output_format=ns.output_format,
        continue_last=ns.continue_last,
        resume=ns.resume,
        mode=mode,
        max_turns=ns.max_turns,
        yes=ns.yes,
        provider=ns.provider,
        model=ns.model,
        base_url=ns.base_url,
        max_tokens=ns.max_tokens,
        thinking_budget=ns.thinking_budget,
        reasoning_effort=ns.reasoning_effort,
        project_root=root,
    )


def _prompt(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> str:
    if ns.prompt == "-" and ns.words:
        parser.error("-p - reads the prompt from standard input; do not give words as well")
    # `koda -p fix the bug` means the whole phrase, as if it had been quoted.
    text = " ".join([ns.prompt, *ns.words] if ns.prompt is not None else ns.words)
    stdin_piped = sys.stdin is not None and not sys.stdin.isatty()
    if text == "-" or (not text and stdin_piped):
        text = sys.stdin.read() if sys.stdin is not None else ""
    elif not text:
        parser.print_usage(sys.stderr)
        print(
            "koda: the interactive REPL is not in this version yet; give a prompt with "
            "-p PROMPT (or pipe one in), or try `koda demo`.",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    if not text.strip():
        parser.error("the prompt is empty")
    return text
