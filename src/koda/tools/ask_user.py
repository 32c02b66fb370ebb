"""AskUser: a question for the person at the keyboard, with optional answers to pick from."""

from __future__ import annotations

import json
from typing import Any

from koda.tools.args import one_line, req_str
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.schema import arguments, string

NOBODY = (
    "Nobody can answer right now (Koda is running without a person at the keyboard); "
    "decide yourself and say what you assumed."
)
MAX_QUESTION_CHARS = 2000
MAX_OPTIONS = 10
MAX_OPTION_CHARS = 200


class AskUser:
    name = "AskUser"
    description = (
        "Ask the user a question and wait for the answer. Only when you cannot go on "
        "sensibly without their decision; offer options when the choices are clear."
    )

    def __init__(self) -> None:
        self.parameters: dict[str, Any] = arguments(
            ["question"],
            question=string("The question, self-contained."),
            options={
                "type": "array",
                "items": {"type": "string"},
                "description": "Answers to choose from (the user may still type another).",
            },
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return f"AskUser: {one_line(args.get('question', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        question = req_str(args, "question", allow_empty=False).strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise ToolError(f"The question is too long; keep it under {MAX_QUESTION_CHARS} chars.")
        options = parse_options(args.get("options"))
        answer = await ctx.ask_user(question, options)
        if answer is None or not answer.strip():
            return ToolResult(NOBODY)
        return ToolResult(f"The user answered: {answer.strip()}")


def parse_options(raw: object) -> list[str]:
    """Distinct, non-empty choices in the order given; none is fine."""
    if raw is None:
        return []
    if isinstance(raw, str):  # a JSON array sent as a string
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ToolError("Argument 'options' must be a list of strings.") from None
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        raise ToolError("Argument 'options' must be a list of strings.")
    options: list[str] = []
    for option in raw:
        text = " ".join(option.split())
        if len(text) > MAX_OPTION_CHARS:
            raise ToolError(f"Each option must be under {MAX_OPTION_CHARS} characters.")
        if text and text not in options:
            options.append(text)
    if len(options) > MAX_OPTIONS:
        raise ToolError(f"Give at most {MAX_OPTIONS} options.")
    return options
