"""Switching provider mid-session: every vendor accepts the history another vendor made.

A real store, the default tools, a real KodaSession and the three fake servers, which refuse a
request the way their APIs do (see each fake's `validate_request`). A session starts on one
provider with text, an image, signed thinking and tool calls (Read, Glob) in its history, then
`update_provider` moves it to the next provider, which answers with a tool call of its own, and
so on around the circle, in both directions. Every request must be accepted, every tool call
stays paired with its result, and a provider never receives another's thinking or signatures.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from fakes import anthropic_fake, gemini_fake, openai_fake
from fakes.anthropic_fake import AnthropicFake
from fakes.gemini_fake import GeminiFake
from fakes.openai_fake import OpenAIFake
from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.events import Error, ToolCallResult, TurnEnd
from koda.engine.history import build_history
from koda.engine.session import KodaSession
from koda.engine.sink import CollectingSink
from koda.engine.trust import TrustMode
from koda.providers.base import ImageData, LlmProvider, Message
from koda.providers.catalog import create_provider
from koda.store import Store

# A real 1x1 PNG: the fakes check that image bytes are what their media type says.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
GEMINI_KEY = "AIzaSy-switching-test"
CONFIGS = {
    "anthropic": KodaConfig(
        provider="anthropic", model="claude-sonnet-4-5", thinking_budget=2048,
        retry_base_delay=0.01,
    ),
    "openai": KodaConfig(provider="openai", model="gpt-4.1", retry_base_delay=0.01),
    # A Gemini 3 model: its API also insists on the thought signatures of the current turn.
    "gemini": KodaConfig(
        provider="gemini", model="gemini-3-pro-preview", thinking_budget=1024,
        retry_base_delay=0.01,
    ),
}  # fmt: skip


@dataclass
class Fakes:
    anthropic: AnthropicFake
    openai: OpenAIFake
    gemini: GeminiFake

    def rejections(self) -> list[Any]:
        return [
            *(("anthropic", why) for _, why in self.anthropic.rejected),
            *(("openai", why) for _, why in self.openai.rejected),
            *(("gemini", why) for _, why in self.gemini.rejected),
        ]

    def bodies(self, vendor: str) -> list[dict[str, Any]]:
        if vendor == "anthropic":
            return [r.json for r in self.anthropic.message_requests()]
        if vendor == "openai":
            return list(self.openai.chat_bodies)
        return [r.json for r in self.gemini.posts]

    def pending(self) -> int:
        return self.anthropic.pending + len(self.openai.replies) + len(self.gemini.replies)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    with AnthropicFake() as a, OpenAIFake() as o, GeminiFake(api_key=GEMINI_KEY) as g:
        a.strict_signatures = g.strict_signatures = True  # another vendor's signature fails
        o.sniff_images = True
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-switching")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", a.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-switching")
        monkeypatch.setenv("OPENAI_BASE_URL", o.base_url)
        monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", g.url)
        yield Fakes(a, o, g)


# -- one turn per provider, each with tool calls and thinking of its own ------------------------


@dataclass
class Leg:
    """What one provider's turn puts in the history: its private parts must stay its own."""

    vendor: str
    requests: int  # model requests the turn makes
    private: list[str]  # thinking text and signatures: never sent to another vendor
    echoed_now: list[str]  # signatures the vendor gets back in the turn's later requests
    echoed_later: list[str]  # and in its requests of later turns
    bodies: list[dict[str, Any]] = field(default_factory=list)  # the turn's requests


def script_leg(fakes: Fakes, vendor: str, n: int) -> Leg:
    if vendor == "anthropic":
        thinking = f"anthropic-thinking-{n}: read hello.txt, then find the python files"
        signature = f"EqQBCkYIBRgCanthropicSig{n}"
        fakes.anthropic.push(
            anthropic_fake.Reply(
                thinking=thinking, signature=signature, text="Let me read it.",
                tool_calls=[anthropic_fake.Call("Read", {"path": "hello.txt"}, id=f"toolu_{n}r")],
            ),
            # Without interleaved thinking, Claude does not think again inside the tool loop.
            anthropic_fake.Reply(
                text="Now the python files.",
                tool_calls=[anthropic_fake.Call("Glob", {"pattern": "**/*.py"}, id=f"toolu_{n}g")],
            ),
            anthropic_fake.Reply(text=f"Answer {n} from anthropic."),
        )  # fmt: skip
        return Leg(vendor, 3, [thinking, signature], [signature], [signature])
    if vendor == "openai":
        reasoning = f"openai-reasoning-{n}: app.py holds the entry point"
        fakes.openai.push(
            openai_fake.Reply(
                reasoning=reasoning, text="Checking app.py.",
                # An id in the style of OpenAI-compatible hosts (Kimi): not in Anthropic's charset.
                tool_calls=[openai_fake.Call("Read", {"path": "src/app.py"},
                                             id=f"functions.Read:{n}")],
            ),
            openai_fake.Reply(text=f"Answer {n} from openai."),
        )  # fmt: skip
        return Leg(vendor, 2, [reasoning], [], [])
    thinking = f"gemini-thinking-{n}: list the text files"
    call_sig = base64.b64encode(f"gemini-call-signature-{n}".encode()).decode()
    text_sig = base64.b64encode(f"gemini-text-signature-{n}".encode()).decode()
    fakes.gemini.push(
        gemini_fake.Reply(
            thinking=thinking,
            tool_calls=[gemini_fake.Call("Glob", {"pattern": "*.txt"}, signature=call_sig)],
        ),
        gemini_fake.Reply(text=f"Answer {n} from gemini.", signature=text_sig),
    )
    return Leg(vendor, 2, [thinking, call_sig, text_sig], [call_sig], [call_sig, text_sig])


async def run_turn(session: KodaSession, config: KodaConfig, prompt: str, **kw: Any) -> Any:
    session.add_user_message(prompt, **kw)
    sink = CollectingSink()
    await asyncio.wait_for(session.run_turn(config, [], sink, asyncio.Queue()), 20)
    return sink


# -- what each vendor's requests must show --------------------------------------------------------


def anthropic_pairs(body: dict[str, Any]) -> list[tuple[list[str], list[str]]]:
    """(tool_use ids of an assistant message, tool_result ids leading the next message)."""
    messages = body["messages"]
    pairs = []
    for i, m in enumerate(messages):
        calls = [b["id"] for b in m["content"] if b["type"] == "tool_use"]
        if m["role"] == "assistant" and calls:
            results = []
            for b in messages[i + 1]["content"]:
                if b["type"] != "tool_result":
                    break
                results.append(b["tool_use_id"])
            pairs.append((calls, results))
    return pairs


def openai_pairs(body: dict[str, Any]) -> list[tuple[list[str], list[str]]]:
    messages = body["messages"]
    pairs = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and m.get("tool_calls"):
            results = []
            for after in messages[i + 1 :]:
                if after["role"] != "tool":
                    break
                results.append(after["tool_call_id"])
            pairs.append(([c["id"] for c in m["tool_calls"]], results))
    return pairs


def gemini_pairs(body: dict[str, Any]) -> list[tuple[list[str], list[str]]]:
    contents = body["contents"]
    pairs = []
    for i, c in enumerate(contents):
        calls = [p["functionCall"]["name"] for p in c["parts"] if "functionCall" in p]
        if calls:
            answers = contents[i + 1]["parts"] if i + 1 < len(contents) else []
            pairs.append((calls, [p["functionResponse"]["name"] for p in answers
                                  if "functionResponse" in p]))  # fmt: skip
    return pairs


PAIRS: dict[str, Callable[[dict[str, Any]], list[tuple[list[str], list[str]]]]] = {
    "anthropic": anthropic_pairs, "openai": openai_pairs, "gemini": gemini_pairs,
}  # fmt: skip


def assert_paired(vendor: str, body: dict[str, Any]) -> int:
    pairs = PAIRS[vendor](body)
    for calls, results in pairs:
        assert calls, body
        assert sorted(results) == sorted(calls), (vendor, calls, results)
        assert len(set(calls)) == len(calls) or vendor == "gemini"
    return sum(len(calls) for calls, _ in pairs)


ORDERS = [
    ("anthropic", "openai", "gemini", "anthropic"),
    ("anthropic", "gemini", "openai", "anthropic"),
    ("openai", "anthropic", "gemini", "openai"),
    ("gemini", "openai", "anthropic", "gemini"),
]


@pytest.mark.parametrize("order", ORDERS, ids=["->".join(o) for o in ORDERS])
async def test_switching_provider_keeps_every_request_valid(
    order: tuple[str, ...],
    fakes: Fakes,
    store: Store,
    project: Path,
    check_history: Callable[[list[Message]], None],
) -> None:
    first = CONFIGS[order[0]]
    providers: list[LlmProvider] = [create_provider(first)]
    session = KodaSession.create(
        KodaAgent.create(project), store, providers[0], TrustMode.AUTO, first
    )
    legs: list[Leg] = []
    calls_seen = 0
    try:
        for n, vendor in enumerate(order):
            config = CONFIGS[vendor]
            if n:
                session.update_provider(config)
                providers.append(session.provider)
            assert session.provider.name == vendor and session.model == config.model
            before = len(fakes.bodies(vendor))
            legs.append(script_leg(fakes, vendor, n))
            images = [ImageData("image/png", PNG)] if n == 0 else []
            sink = await run_turn(session, config, f"Question {n}: what is here?", images=images)

            end = sink.events[-1]
            assert isinstance(end, TurnEnd)
            assert end.reason.kind == "complete", (vendor, sink.of_type(Error), fakes.rejections())
            assert fakes.rejections() == []
            assert fakes.pending() == 0
            assert sink.text().endswith(f"Answer {n} from {vendor}.")
            assert all(r.ok for r in sink.of_type(ToolCallResult))
            legs[-1].bodies = fakes.bodies(vendor)[before:]
            assert len(legs[-1].bodies) == legs[-1].requests
            for body in legs[-1].bodies:
                raw = json.dumps(body)
                assert f"Question {n}: what is here?" in raw
                assert PNG in raw  # the first prompt's image travels to every provider
                calls_seen = max(calls_seen, assert_paired(vendor, body))
            check_history(build_history(store.messages.load(session.id)))
    finally:
        for provider in providers:
            await provider.aclose()

    # Every tool call of every leg reached the last provider paired with its result.
    assert calls_seen == sum({"anthropic": 2, "openai": 1, "gemini": 1}[v] for v in order)
    assert_private_parts_stay_home(fakes, legs)
    assert_thinking_stays_on_through_the_loop(fakes)


def assert_private_parts_stay_home(fakes: Fakes, legs: list[Leg]) -> None:
    """Thinking and signatures reach only the vendor that made them; and that vendor gets its
    own signed thinking back (Anthropic) or its signatures (Gemini) on every later request."""
    for vendor in ("anthropic", "openai", "gemini"):
        raw = "\n".join(json.dumps(b) for b in fakes.bodies(vendor))
        for leg in legs:
            for secret in leg.private:
                if leg.vendor != vendor:
                    assert secret not in raw, f"{leg.vendor}'s {secret!r} reached {vendor}"
    for body in fakes.bodies("openai"):
        for m in body["messages"]:
            assert not {"thinking", "reasoning_content", "signature"} & set(m)
    anthropic_bodies = fakes.bodies("anthropic")
    for body in anthropic_bodies:
        for m in body["messages"]:
            for block in m["content"]:
                if block["type"] == "thinking":
                    assert block["signature"] in fakes.anthropic.issued_signatures
    gemini_bodies = fakes.bodies("gemini")
    for body in gemini_bodies:
        for c in body["contents"]:
            for part in c["parts"]:
                assert "thought" not in part  # thinking text is never sent back
                if "thoughtSignature" in part:
                    assert part["thoughtSignature"] in fakes.gemini.issued_signatures
    for i, leg in enumerate(legs):
        last = json.dumps(leg.bodies[-1])
        assert all(s in last for s in leg.echoed_now), f"{leg.vendor} lost its own signature"
        for later in legs[i + 1 :]:
            if later.vendor == leg.vendor:
                first = json.dumps(later.bodies[0])
                assert all(s in first for s in leg.echoed_later), f"{leg.vendor} lost signatures"


def assert_thinking_stays_on_through_the_loop(fakes: Fakes) -> None:
    """Each Anthropic request of a thinking turn asks for thinking: the loop began with a
    signed thinking block, even if later steps of the loop (rightly) have none."""
    for body in fakes.bodies("anthropic"):
        assert body.get("thinking") == {"type": "enabled", "budget_tokens": 2048}, [
            [b["type"] for b in m["content"]] for m in body["messages"]
        ]


# -- a turn cut off inside its tool loop, then another provider -----------------------------------

PAIRS_OF_VENDORS = [(a, b) for a in CONFIGS for b in CONFIGS if a != b]


def script_cut_off_loop(fakes: Fakes, vendor: str) -> None:
    """Two parallel tool calls, then an error that ends the turn before the model answers."""
    if vendor == "anthropic":
        fakes.anthropic.push(
            anthropic_fake.Reply(
                thinking="two things to look at", signature="EqQBcutOffLoop", tool_calls=[
                    anthropic_fake.Call("Read", {"path": "hello.txt"}, id="toolu_cut_r"),
                    anthropic_fake.Call("Glob", {"pattern": "*.txt"}, id="toolu_cut_g")]),
            anthropic_fake.http_error(400, "invalid_request_error", "the request broke off"),
        )  # fmt: skip
    elif vendor == "openai":
        fakes.openai.push(
            openai_fake.Reply(tool_calls=[
                openai_fake.Call("Read", {"path": "hello.txt"}, id="call_cutR"),
                openai_fake.Call("Glob", {"pattern": "*.txt"}, id="call_cutG")]),
            openai_fake.error_reply(400, "the request broke off"),
        )  # fmt: skip
    else:
        sig = base64.b64encode(b"gemini-cut-off-loop").decode()
        fakes.gemini.push(
            gemini_fake.Reply(tool_calls=[
                gemini_fake.Call("Read", {"path": "hello.txt"}, signature=sig),
                gemini_fake.Call("Glob", {"pattern": "*.txt"})]),
            gemini_fake.error_reply(400, "INVALID_ARGUMENT", "the request broke off"),
        )  # fmt: skip


@pytest.mark.parametrize(("before", "after"), PAIRS_OF_VENDORS)
async def test_a_turn_cut_off_mid_loop_is_taken_over_by_another_provider(
    before: str, after: str, fakes: Fakes, store: Store, project: Path
) -> None:
    """The history ends with tool results and no answer; the next provider gets both calls
    paired with their results, followed by the user's new prompt."""
    providers: list[LlmProvider] = [create_provider(CONFIGS[before])]
    session = KodaSession.create(
        KodaAgent.create(project), store, providers[0], TrustMode.AUTO, CONFIGS[before]
    )
    try:
        script_cut_off_loop(fakes, before)
        sink = await run_turn(session, CONFIGS[before], "Look at the text files.")
        end = sink.events[-1]
        assert isinstance(end, TurnEnd) and end.reason.kind == "error"
        assert "the request broke off" in (end.reason.message or "")
        assert len(sink.of_type(ToolCallResult)) == 2

        session.update_provider(CONFIGS[after])
        providers.append(session.provider)
        script_leg(fakes, after, 1)
        sink = await run_turn(session, CONFIGS[after], "Go on, please.")
        end = sink.events[-1]
        assert isinstance(end, TurnEnd)
        assert end.reason.kind == "complete", (sink.of_type(Error), fakes.rejections())
    finally:
        for provider in providers:
            await provider.aclose()
    assert fakes.rejections() == [] and fakes.pending() == 0
    first = fakes.bodies(after)[0]
    assert assert_paired(after, first) == 2
    assert json.dumps(first).rfind("hello world") < json.dumps(first).rfind("Go on, please.")


# -- an image the next provider cannot read ----------------------------------------------------

GIF = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"  # a real 1x1 GIF


async def test_a_gif_reaches_who_reads_gifs_and_gemini_gets_a_note(
    fakes: Fakes, store: Store, project: Path
) -> None:
    """Anthropic and OpenAI read GIFs; Gemini refuses the whole request over one ("Unsupported
    MIME type: image/gif"), so a GIF from earlier in the session is left out, with a note."""
    providers: list[LlmProvider] = [create_provider(CONFIGS["anthropic"])]
    session = KodaSession.create(
        KodaAgent.create(project), store, providers[0], TrustMode.AUTO, CONFIGS["anthropic"]
    )
    try:
        for n, vendor in enumerate(("anthropic", "openai", "gemini")):
            if n:
                session.update_provider(CONFIGS[vendor])
                providers.append(session.provider)
            script_leg(fakes, vendor, n)
            images = [ImageData("image/gif", GIF), ImageData("image/png", PNG)] if n == 0 else []
            sink = await run_turn(session, CONFIGS[vendor], f"Question {n}", images=images)
            end = sink.events[-1]
            assert isinstance(end, TurnEnd)
            assert end.reason.kind == "complete", (sink.of_type(Error), fakes.rejections())
    finally:
        for provider in providers:
            await provider.aclose()
    assert fakes.rejections() == []
    assert all(GIF in json.dumps(b) for b in fakes.bodies("anthropic") + fakes.bodies("openai"))
    for body in fakes.bodies("gemini"):
        first_prompt = body["contents"][0]["parts"]
        assert GIF not in json.dumps(body)
        assert [p["inlineData"]["mimeType"] for p in first_prompt if "inlineData" in p] == [
            "image/png"
        ]
        assert any("image/gif" in p.get("text", "") for p in first_prompt)


# -- the fakes refuse what the real APIs refuse ---------------------------------------------------

SIG = base64.b64encode(b"sig").decode()


def _anthropic(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 8192, "messages": messages, **extra}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _use(call_id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": "Read", "input": {"path": "a"}}


def _result(call_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": "a"}


def _user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def _assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


THINK = {"type": "enabled", "budget_tokens": 1024}
SIGNED = {"type": "thinking", "thinking": "hm", "signature": "issued"}
LOOP = [_user(_text("go")), _assistant(_text("ok"), _use("t1")), _user(_result("t1"))]
ANTHROPIC_CASES = [
    (_anthropic(LOOP), None),
    (_anthropic([_user(_text("go")), _assistant(SIGNED, _use("t1")), _user(_result("t1")),
                 _assistant(_use("t2")), _user(_result("t2"))], thinking=THINK), None),
    (_anthropic([_user(_result("t1"))]), "unexpected `tool_use_id`"),
    (_anthropic([*LOOP[:2], _user(_text("next"))]), "without `tool_result` blocks immediately"),
    (_anthropic([*LOOP[:2], _user(_text("first"), _result("t1"))]), "immediately after: t1"),
    (_anthropic([LOOP[0], _assistant(_use("call:1"))]), "String should match pattern"),
    (_anthropic([_assistant(_text("hi"))]), 'first message must use the "user" role'),
    (_anthropic([LOOP[0], _user(_text("again"))]), "roles must alternate"),
    (_anthropic(LOOP, thinking=THINK), "must start with a thinking block"),
    (_anthropic([LOOP[0], _assistant({"type": "thinking", "thinking": "x"}, _text("y")),
                 _user(_text("z"))]), "thinking.signature: Field required"),
    (_anthropic([_user(_text(""))]), "text content blocks must be non-empty"),
    (_anthropic([_user({"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                                   "data": PNG}})]), "Input should be 'image/"),
    (_anthropic([_user({"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                                   "data": PNG}})]), "does not match the provided"),
]  # fmt: skip


def _openai(*messages: dict[str, Any], model: str = "gpt-4.1") -> dict[str, Any]:
    return {"model": model, "messages": list(messages), "stream": True}


def _call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "Read", "arguments": "{}"}}


USER = {"role": "user", "content": "go"}
CALLS = {"role": "assistant", "content": None, "tool_calls": [_call("c1"), _call("c2")]}
TOOL1 = {"role": "tool", "tool_call_id": "c1", "content": "a"}
TOOL2 = {"role": "tool", "tool_call_id": "c2", "content": "b"}
OPENAI_CASES = [
    (_openai(USER, CALLS, TOOL1, TOOL2, USER), None),
    (_openai(USER, TOOL1), "must be a response to a preceeding message with 'tool_calls'"),
    (_openai(USER, CALLS, TOOL1, USER), "did not have response messages: c2"),
    (_openai(USER, CALLS, TOOL2, TOOL1, {**TOOL1, "tool_call_id": "c9"}), "'c9' not found"),
    (_openai(USER, {**CALLS, "tool_calls": [_call("")]}), "empty string"),
    (_openai(USER, {**CALLS, "tool_calls": [_call("x" * 41)]}), "maximum length 40"),
    (_openai({"role": "user", "content": [{"type": "image", "data": PNG}]}), "Invalid value"),
    (_openai({"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "data:image/png;base64,QUJD"}}]}), "unsupported image"),
    (_openai({"role": "assistant", "content": None}), "expected a string, got null"),
    (_openai(USER, model="gpt-5") | {"max_tokens": 10}, "Use 'max_completion_tokens'"),
]  # fmt: skip


def _gemini(*contents: dict[str, Any]) -> dict[str, Any]:
    return {"contents": list(contents)}


G_USER = {"role": "user", "parts": [{"text": "go"}]}
G_CALL = {"role": "model", "parts": [{"functionCall": {"name": "Read", "args": {}}}]}
G_SIGNED_CALL = {"role": "model", "parts": [
    {"functionCall": {"name": "Read", "args": {}}, "thoughtSignature": SIG}]}  # fmt: skip
G_RESULT = {"role": "user", "parts": [{"functionResponse": {"name": "Read", "response": {}}}]}
GEMINI_CASES: list[tuple[dict[str, Any], str | None, str]] = [
    (_gemini(G_USER, G_CALL, G_RESULT), None, "gemini-2.5-flash"),
    (_gemini(G_USER, G_SIGNED_CALL, G_RESULT), None, "gemini-3-pro-preview"),
    (_gemini({"role": "assistant", "parts": [{"text": "x"}]}), "valid role: user, model", ""),
    (_gemini({"role": "user", "parts": []}), "contents.parts must not be empty", ""),
    (_gemini({"role": "user", "parts": [{"text": ""}]}), "required oneof field 'data'", ""),
    (_gemini(G_USER, G_RESULT), "function response turn comes immediately after", ""),
    (_gemini(G_USER, G_CALL, G_USER), "number of function response parts is equal", ""),
    (_gemini(G_USER, G_CALL, {"role": "user", "parts": G_RESULT["parts"] * 2}),
     "number of function response parts is equal", ""),
    (_gemini(G_USER, G_CALL, {"role": "user", "parts": [
        {"functionResponse": {"name": "Glob", "response": {}}}]}), "name of each function", ""),
    (_gemini(G_USER, {"role": "model", "parts": [{"text": "hm"}]}, G_CALL),
     "function call turn comes immediately after a user turn", ""),
    (_gemini(G_USER, G_CALL, G_RESULT), "missing a thought_signature", "gemini-3-pro-preview"),
    (_gemini({"role": "user", "parts": [{"inlineData": {"mimeType": "image/png",
                                                         "data": "not base64!"}}]}),
     "Base64 decoding failed", ""),
]  # fmt: skip


@pytest.mark.parametrize(("body", "refusal"), ANTHROPIC_CASES)
def test_anthropic_fake_refuses_what_the_api_refuses(
    body: dict[str, Any], refusal: str | None
) -> None:
    problem = anthropic_fake.validate_request(body, {"issued"})
    assert (problem is None) if refusal is None else (refusal in (problem or "")), problem


@pytest.mark.parametrize(("body", "refusal"), OPENAI_CASES)
def test_openai_fake_refuses_what_the_api_refuses(
    body: dict[str, Any], refusal: str | None
) -> None:
    problem = openai_fake.validate_request(body)
    assert (problem is None) if refusal is None else (refusal in (problem or {})["message"]), (
        problem
    )


@pytest.mark.parametrize(("body", "refusal", "model"), GEMINI_CASES)
def test_gemini_fake_refuses_what_the_api_refuses(
    body: dict[str, Any], refusal: str | None, model: str
) -> None:
    problem = gemini_fake.validate_request(body, model or "gemini-2.5-flash")
    assert (problem is None) if refusal is None else (refusal in (problem or "")), problem


def test_a_signature_from_elsewhere_is_refused() -> None:
    think = _anthropic([LOOP[0], _assistant({**SIGNED, "signature": "gemini:xyz"}, _text("y")),
                        _user(_text("z"))])  # fmt: skip
    assert "Invalid `signature`" in (anthropic_fake.validate_request(think, {"issued"}) or "")
    assert anthropic_fake.validate_request(think) is None  # not strict: any signature passes
    body = _gemini(G_USER, G_SIGNED_CALL, G_RESULT)
    assert gemini_fake.validate_request(body, "", signatures={"other"}) == (
        "Corrupted thought signature."
    )


async def test_a_refused_request_gets_the_vendor_400_and_uses_no_reply(fakes: Fakes) -> None:
    """Over the wire: the status and error body each vendor sends, nothing scripted consumed."""
    fakes.anthropic.push(anthropic_fake.Reply(text="never"))
    fakes.openai.push(openai_fake.Reply(text="never"))
    fakes.gemini.push(gemini_fake.Reply(text="never"))
    async with httpx2.AsyncClient() as client:
        a = await client.post(
            f"{fakes.anthropic.url}/v1/messages", json=_anthropic([_user(_result("t1"))])
        )
        o = await client.post(
            f"{fakes.openai.base_url}/chat/completions", json=_openai(USER, TOOL1)
        )
        g = await client.post(
            f"{fakes.gemini.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            json=_gemini(G_USER, G_RESULT),
            headers={"x-goog-api-key": GEMINI_KEY},
        )
    assert a.status_code == o.status_code == g.status_code == 400
    assert a.json()["type"] == "error"
    assert a.json()["error"]["type"] == "invalid_request_error"
    assert o.json()["error"]["type"] == "invalid_request_error"
    assert o.json()["error"]["param"] == "messages.[1].role"
    assert g.json()["error"]["status"] == "INVALID_ARGUMENT" and g.json()["error"]["code"] == 400
    assert len(fakes.rejections()) == 3
    assert fakes.pending() == 3
