"""A session as Markdown or JSON, for `koda sessions export`."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from koda.store import MessageRow, SessionRow, UsageTotals


def to_json(session: SessionRow, messages: list[MessageRow], usage: UsageTotals) -> str:
    data: dict[str, Any] = {
        "session": asdict(session),
        "usage": asdict(usage),
        "messages": [_message(m) for m in messages],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _message(m: MessageRow) -> dict[str, Any]:
    data = asdict(m)
    data.pop("session_id")
    data["complete"] = data.pop("completed_at") is not None
    return data


def to_markdown(session: SessionRow, messages: list[MessageRow], usage: UsageTotals) -> str:
    lines = [
        f"# {session.title or 'Untitled session'}",
        "",
        f"- Session: `{session.id}`",
        f"- Project: `{session.project_root}`",
        f"- Created: {session.created_at} · last used: {session.accessed_at}",
        f"- Model: {session.provider or '?'} / {session.model or '?'} · mode: {session.mode}",
        f"- Tokens: {usage.prompt} in, {usage.completion} out",
        "",
    ]
    for m in messages:
        lines.extend(_markdown_message(m))
    return "\n".join(lines).rstrip() + "\n"


def _fence(text: str, lang: str = "") -> list[str]:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return [f"{ticks}{lang}", text.rstrip("\n"), ticks]


def _markdown_message(m: MessageRow) -> list[str]:
    if m.role == "user":
        return ["## User", "", m.content, ""]
    if m.role == "assistant":
        head = "## Assistant" + ("" if m.is_complete else " (interrupted)")
        out = [head, ""]
        if m.thinking:
            out += ["<details><summary>Thinking</summary>", "", m.thinking, "", "</details>", ""]
        if m.content:
            out += [m.content, ""]
        for call in m.tool_calls:
            out += [
                f"**Tool call** `{call.get('name')}`",
                "",
                *_fence(json.dumps(call.get("arguments"), indent=2), "json"),
                "",
            ]
        return out
    if m.role == "tool":
        status = "" if m.tool_ok is None or m.tool_ok else " (failed)"
        return [
            f"**Result** of `{m.tool_name}`{status}",
            "",
            *_fence(m.full_output or m.content),
            "",
        ]
    return [f"## {m.role.title()}", "", m.content, ""]
