"""AskUser: the question reaches whoever answers, and nobody answering is said plainly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from koda.engine.commands import AskUserResponse
from koda.engine.events import AskUserRequest, EngineEvent, ToolCallResult
from koda.tools.ask_user import NOBODY, AskUser
from koda.tools.base import Effect, ToolContext, ToolError
from koda.tools.catalog import ToolCatalog

if TYPE_CHECKING:
    from conftest import Harness


class Person:
    """Answers every question with `answer` and remembers what was asked."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, list[str]]] = []

    async def __call__(self, question: str, options: list[str]) -> str | None:
        self.asked.append((question, options))
        return self.answer


async def ask(ctx: ToolContext, person: Person | None = None, **args: Any) -> str:
    if person is not None:
        ctx.ask_user = person
    result = await AskUser().run(ctx, args)
    assert result.ok
    return result.output


async def test_question_and_options_reach_the_user(ctx: ToolContext) -> None:
    person = Person("  Postgres  ")
    output = await ask(
        ctx, person, question=" Which database? ", options=["SQLite", " Postgres ", "SQLite", ""]
    )
    assert output == "The user answered: Postgres"
    assert person.asked == [("Which database?", ["SQLite", "Postgres"])]


async def test_options_are_optional(ctx: ToolContext) -> None:
    person = Person("yes")
    await ask(ctx, person, question="Go on?")
    await ask(ctx, person, question="Go on?", options=None)
    await ask(ctx, person, question="Go on?", options='["a", "b"]')
    assert [options for _, options in person.asked] == [[], [], ["a", "b"]]


async def test_nobody_at_the_keyboard(ctx: ToolContext) -> None:
    # The context's default is the headless one: nobody can answer.
    assert await ask(ctx, question="Which?") == NOBODY
    assert await ask(ctx, Person("   "), question="Which?") == NOBODY
    assert NOBODY == (
        "Nobody can answer right now (Koda is running without a person at the keyboard); "
        "decide yourself and say what you assumed."
    )


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({}, "Missing required argument 'question'"),
        ({"question": " "}, "'question' must not be empty"),
        ({"question": 7}, "'question' must be a string"),
        ({"question": "q" * 2001}, "too long"),
        ({"question": "q", "options": "a, b"}, "'options' must be a list of strings"),
        ({"question": "q", "options": [1, 2]}, "'options' must be a list of strings"),
        ({"question": "q", "options": {"a": 1}}, "'options' must be a list of strings"),
        ({"question": "q", "options": [str(i) for i in range(11)]}, "at most 10 options"),
        ({"question": "q", "options": ["o" * 201]}, "under 200 characters"),
    ],
)
async def test_bad_arguments_ask_nobody(
    ctx: ToolContext, args: dict[str, Any], problem: str
) -> None:
    person = Person("x")
    ctx.ask_user = person
    with pytest.raises(ToolError, match=problem):
        await AskUser().run(ctx, args)
    assert person.asked == []


def test_read_only_and_summary() -> None:
    assert AskUser().effect({"question": "q"}) == Effect.READ_ONLY
    assert AskUser().summary({"question": "Which one?\nDetails"}) == "AskUser: Which one?…"


async def test_through_the_engine_a_person_answers(harness: Harness) -> None:
    def answer(event: EngineEvent) -> AskUserResponse | None:
        if isinstance(event, AskUserRequest):
            return AskUserResponse(event.id, f"{event.options[1]}, please")
        return None

    session = harness.session(
        [
            {
                "tool_calls": [
                    {"id": "q1", "name": "AskUser",
                     "args": {"question": "Tabs or spaces?", "options": ["tabs", "spaces"]}}
                ]
            },
            {"text": "Spaces it is."},
        ],
        mode="plan",  # read-only: asking is allowed even where nothing may change
        catalog=ToolCatalog([AskUser()]),
    )  # fmt: skip
    sink = await harness.turn(session, "format it", answer)
    [request] = sink.of_type(AskUserRequest)
    assert (request.question, request.options) == ("Tabs or spaces?", ["tabs", "spaces"])
    [result] = sink.of_type(ToolCallResult)
    assert (result.ok, result.output) == (True, "The user answered: spaces, please")


async def test_through_the_engine_an_empty_answer_is_nobody(harness: Harness) -> None:
    def dismiss(event: EngineEvent) -> AskUserResponse | None:
        return AskUserResponse(event.id, "") if isinstance(event, AskUserRequest) else None

    session = harness.session(
        [
            {"tool_calls": [{"id": "q1", "name": "AskUser", "args": {"question": "Which?"}}]},
            {"text": "I assumed the first."},
        ],
        catalog=ToolCatalog([AskUser()]),
    )
    sink = await harness.turn(session, "go", dismiss)
    [result] = sink.of_type(ToolCallResult)
    assert result.output == NOBODY
