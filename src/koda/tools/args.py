"""Reading the arguments a model sent, and sizing tool output to the model's context."""

from __future__ import annotations

from typing import Any, overload

from koda.tools.base import ToolContext, ToolError


def req_str(args: dict[str, Any], name: str, *, allow_empty: bool = True) -> str:
    """A required string argument; `allow_empty=False` also refuses "" and whitespace."""
    if args.get(name) is None:
        raise ToolError(f"Missing required argument '{name}' (a string).")
    value = args[name]
    if not isinstance(value, str):
        raise ToolError(f"Argument '{name}' must be a string, not {_kind(value)}.")
    if not allow_empty and not value.strip():
        raise ToolError(f"Argument '{name}' must not be empty.")
    return value


@overload
def opt_str(args: dict[str, Any], name: str, default: str) -> str: ...
@overload
def opt_str(args: dict[str, Any], name: str, default: None = None) -> str | None: ...
def opt_str(args: dict[str, Any], name: str, default: str | None = None) -> str | None:
    # Models often send null for "not given"; treat it like a missing key.
    value = args.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ToolError(f"Argument '{name}' must be a string, not {_kind(value)}.")
    return value


def opt_int(
    args: dict[str, Any],
    name: str,
    default: int,
    *,
    min: int | None = None,
    max: int | None = None,
) -> int:
    """An optional integer; numeric strings like "5" are accepted because models send them."""
    value = args.get(name)
    if value is None:
        return default
    number = _as_int(value)
    if number is None:
        raise ToolError(f"Argument '{name}' must be an integer, not {_kind(value)}.")
    if min is not None and number < min:
        raise ToolError(f"Argument '{name}' must be at least {min} (got {number}).")
    if max is not None and number > max:
        raise ToolError(f"Argument '{name}' must be at most {max} (got {number}).")
    return number


def opt_bool(args: dict[str, Any], name: str, default: bool = False) -> bool:
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ToolError(f"Argument '{name}' must be a boolean (true or false), not {_kind(value)}.")


def scaled(ctx: ToolContext, base: int) -> int:
    """`base` grown with the context window: x1 up to 100k tokens, at most x4."""
    factor = min(max(ctx.context_window / 100_000, 1.0), 4.0)
    return int(base * factor)


def one_line(value: object, limit: int = 80) -> str:
    """A short single-line rendering of an argument, for summaries."""
    text = value if isinstance(value, str) else repr(value)
    first = text.strip().splitlines()[0] if text.strip() else ""
    more = len(first) > limit or first != text.strip()
    return first[:limit] + ("…" if more else "")


def _as_int(value: object) -> int | None:
    # bool is an int subclass, but `true` for a line number is a model mistake, not 1.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _kind(value: object) -> str:
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)
