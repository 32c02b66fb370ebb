"""Headless output: the engine's events written as text, one JSON object, or JSON lines."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from koda.engine import events as ev
from koda.engine.loop_guard import args_preview

MAX_OUTPUT_LINES = 40


@dataclass
class RunSummary:
    """What a headless run learned from its events, for the final result."""

    started: float = field(default_factory=time.monotonic)
    model_calls: int = 0
    last_text: str = ""
    current_text: str = ""
    usage: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("prompt", "completion", "cache_read", "cache_write", "thinking"), 0
        )
    )
    cost_usd: float | None = None
    priced: bool = True
    end: ev.TurnEndReason | None = None
    hit_cap: bool = False
    errors: list[str] = field(default_factory=list)

    def observe(self, event: ev.EngineEvent) -> None:
        if isinstance(event, ev.TextDelta):
            self.current_text += event.text
        elif isinstance(event, ev.TextDone):
            self.last_text, self.current_text = self.current_text, ""
        elif isinstance(event, ev.ReplyDiscarded):
            self.current_text = ""
        elif isinstance(event, ev.Usage):
            self._add_usage(event)
        elif isinstance(event, ev.LoopCapReached):
            self.hit_cap = True
        elif isinstance(event, ev.Error):
            self.errors.append(event.message)
        elif isinstance(event, ev.TurnEnd):
            self.end = event.reason

    def _add_usage(self, event: ev.Usage) -> None:
        self.model_calls += 1
        for key in self.usage:
            self.usage[key] += getattr(event, key)
        if event.cost_usd is None:
            self.priced = False
        else:
            self.cost_usd = (self.cost_usd or 0.0) + event.cost_usd

    @property
    def subtype(self) -> str:
        if self.end is None or self.end.kind == "error":
            return "error_max_turns" if self.hit_cap else "error"
        return "cancelled" if self.end.kind == "cancelled" else "success"

    def result(self, session_id: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "result",
            "subtype": self.subtype,
            "is_error": self.subtype != "success",
            "result": self.last_text or self.current_text,
            "session_id": session_id,
            "num_turns": self.model_calls,
            "duration_ms": int((time.monotonic() - self.started) * 1000),
            "usage": dict(self.usage),
            "total_cost_usd": self.cost_usd if self.priced else None,
            "errors": list(self.errors),
            **extra,
        }


class TextWriter:
    """The answer on stdout as it streams; progress, warnings and errors on stderr."""

    def __init__(self, out: TextIO, err: TextIO, *, show_results: bool = False) -> None:
        self.out, self.err = out, err
        self.summary = RunSummary()
        self._show_results = show_results
        self._lines: dict[str, int] = {}
        self._text_open = False

    def emit(self, event: ev.EngineEvent) -> None:
        self.summary.observe(event)
        handler = getattr(self, "_on_" + event.TYPE, None)
        if handler is not None:
            handler(event)

    def _note(self, text: str) -> None:
        if self._text_open:
            self.out.write("\n")
            self.out.flush()
            self._text_open = False
        self.err.write(text + "\n")
        self.err.flush()

    def _on_text_delta(self, e: ev.TextDelta) -> None:
        self.out.write(e.text)
        self.out.flush()
        self._text_open = not e.text.endswith("\n")

    def _on_text_done(self, e: ev.TextDone) -> None:
        if self._text_open:
            self.out.write("\n")
            self.out.flush()
            self._text_open = False

    def _on_reply_discarded(self, e: ev.ReplyDiscarded) -> None:
        self._note(f"koda: [the reply above broke off ({e.reason}); asking again]")

    def _on_thinking_start(self, e: ev.ThinkingStart) -> None:
        self._note("· thinking…")

    def _on_tool_call_start(self, e: ev.ToolCallStart) -> None:
        self._note(f"• {e.name} {args_preview(e.args, 100)}")

    def _on_tool_output_line(self, e: ev.ToolOutputLine) -> None:
        seen = self._lines.get(e.id, 0) + 1
        self._lines[e.id] = seen
        if seen <= MAX_OUTPUT_LINES:
            self._note(f"  │ {e.line}")
        elif seen == MAX_OUTPUT_LINES + 1:
            self._note("  │ … (more output not shown)")

    def _on_tool_call_result(self, e: ev.ToolCallResult) -> None:
        first = e.output.strip().splitlines()[0] if e.output.strip() else ""
        mark = "✓" if e.ok else "✗"
        self._note(f"  {mark} {e.name}" + (f": {first[:160]}" if first and not e.ok else ""))
        if self._show_results and e.ok:
            for line in e.output.strip("\n").splitlines()[:MAX_OUTPUT_LINES]:
                self._note(f"    {line}")

    def _on_approval_request(self, e: ev.ApprovalRequest) -> None:
        self._note(f"  ? {e.tool_name} needs approval ({e.effect}): {e.detail}")

    def _on_action_blocked(self, e: ev.ActionBlocked) -> None:
        self._note(f"  ⛔ blocked {e.tool_name}: {e.detail} ({e.reason})")

    def _on_loop_cap_reached(self, e: ev.LoopCapReached) -> None:
        self._note(f"koda: reached the limit of {e.cap} model calls")

    def _on_info(self, e: ev.Info) -> None:
        self._note(f"koda: {e.message}")

    def _on_warn(self, e: ev.Warn) -> None:
        self._note(f"koda: warning: {e.message}")

    def _on_error(self, e: ev.Error) -> None:
        self._note(f"koda: error: {e.message}")

    def _on_turn_end(self, e: ev.TurnEnd) -> None:
        if e.reason.kind == "cancelled":
            self._note("koda: interrupted; the session is saved (continue it with koda -c)")

    def finish(self, session_id: str, extra: dict[str, Any]) -> None:
        s = self.summary
        tokens = s.usage["prompt"] + s.usage["completion"]
        seconds = time.monotonic() - s.started
        self._note(f"· {tokens} tokens · {seconds:.1f}s · session {session_id[:8]}")


class JsonWriter:
    """Nothing until the end, then one JSON object on stdout."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.summary = RunSummary()

    def emit(self, event: ev.EngineEvent) -> None:
        self.summary.observe(event)

    def finish(self, session_id: str, extra: dict[str, Any]) -> None:
        self.out.write(json.dumps(self.summary.result(session_id, extra)) + "\n")
        self.out.flush()


class StreamJsonWriter:
    """One JSON object per line: init first, every engine event, the result with usage last."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.summary = RunSummary()

    def _line(self, data: dict[str, Any]) -> None:
        self.out.write(json.dumps(data) + "\n")
        self.out.flush()

    def init(self, data: dict[str, Any]) -> None:
        self._line({"type": "init", **data})

    def emit(self, event: ev.EngineEvent) -> None:
        self.summary.observe(event)
        self._line(event.to_json())

    def finish(self, session_id: str, extra: dict[str, Any]) -> None:
        self._line(self.summary.result(session_id, extra))
