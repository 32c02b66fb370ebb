"""ThinkTagFilter: inline reasoning tags become thinking, template tokens vanish, at any split."""

from __future__ import annotations

import pytest

from koda.providers.base import TextChunk, ThinkingChunk
from koda.providers.think_filter import TEMPLATE_TOKENS, ThinkTagFilter


def run(pieces: list[str]) -> tuple[str, str, list[TextChunk | ThinkingChunk]]:
    f = ThinkTagFilter()
    out: list[TextChunk | ThinkingChunk] = []
    for piece in pieces:
        out += f.feed(piece)
    out += f.flush()
    text = "".join(c.text for c in out if isinstance(c, TextChunk))
    thinking = "".join(c.text for c in out if isinstance(c, ThinkingChunk))
    return text, thinking, out


def every_split(s: str) -> list[list[str]]:
    """`s` cut into two and into single characters: every tag boundary lands mid-delta once."""
    cuts = [[s[:i], s[i:]] for i in range(len(s) + 1)]
    return [*cuts, list(s)]


@pytest.mark.parametrize("tag", ["think", "thinking", "reasoning", "reflection"])
def test_each_tag_becomes_thinking_at_every_split(tag: str) -> None:
    stream = f"<{tag}>\nweigh the options</{tag}>\n\nThe answer is 4."
    for pieces in every_split(stream):
        text, thinking, _ = run(pieces)
        assert (text, thinking) == ("The answer is 4.", "weigh the options"), pieces


@pytest.mark.parametrize("token", TEMPLATE_TOKENS)
def test_template_tokens_are_stripped_at_every_split(token: str) -> None:
    stream = f"Hello{token} world{token}"
    for pieces in every_split(stream):
        assert run(pieces)[:2] == ("Hello world", ""), pieces


def test_template_tokens_inside_reasoning_are_stripped_too() -> None:
    assert run(["<think>a<|im_end|>b</think>c"])[:2] == ("c", "ab")


def test_text_without_tags_passes_through_unchanged_and_promptly() -> None:
    f = ThinkTagFilter()
    assert f.feed("plain ") == [TextChunk("plain ")]
    assert f.feed("a < b and c > d") == [TextChunk("a < b and c > d")]
    assert f.feed("x <") == [TextChunk("x ")]  # only the `<` waits
    assert f.feed("div>") == [TextChunk("<div>")]
    assert f.flush() == []


def test_other_tags_and_angle_brackets_are_kept() -> None:
    stream = "use <b>bold</b>, <thinker>, a <= b, <|other|> and </div>"
    for pieces in every_split(stream):
        assert run(pieces)[:2] == (stream, ""), pieces


def test_a_lone_close_tag_is_dropped_and_the_answer_follows() -> None:
    # Chat templates that put <think> into the prompt leave only the close in the output.
    assert run(["reasoning text</think>\n\nanswer"])[:2] == ("reasoning text\n\nanswer", "")


def test_only_the_matching_close_tag_ends_reasoning() -> None:
    text, thinking, _ = run(["<think>a </reasoning> b <think> c</think>done"])
    assert text == "done"
    assert thinking == "a </reasoning> b <think> c"


def test_unfinished_reasoning_and_partial_tags_are_flushed_as_they_stood() -> None:
    assert run(["<think>still going"])[:2] == ("", "still going")
    assert run(["the end <thin"])[:2] == ("the end <thin", "")
    assert run(["<think>deep </thi"])[:2] == ("", "deep </thi")


def test_order_is_kept_across_several_blocks() -> None:
    _, _, out = run(["A<think>1</think>B<reasoning>2</reasoning>C"])
    assert out == [
        TextChunk("A"),
        ThinkingChunk("1"),
        TextChunk("B"),
        ThinkingChunk("2"),
        TextChunk("C"),
    ]


def test_whitespace_right_after_a_tag_is_dropped_even_across_deltas() -> None:
    assert run(["<think>", "\n", "\n", "idea", "</think>", "\n\n", " ", "Answer"])[:2] == (
        "Answer",
        "idea",
    )


def test_the_filter_reports_whether_it_is_inside_reasoning() -> None:
    f = ThinkTagFilter()
    f.feed("<think>x")
    assert f.thinking
    f.feed("</think>y")
    assert not f.thinking
