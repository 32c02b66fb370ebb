"""`koda -p` as a subprocess against a fake OpenAI server over real HTTP: the whole path a
user with an API key takes, from flags and environment to the wire, the store and the cost."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fakes.openai_fake import Call, OpenAIFake, Reply

from .helpers import Koda


@pytest.fixture
def openai() -> Iterator[OpenAIFake]:
    with OpenAIFake() as server:
        yield server


def env_for(koda: Koda, fake: OpenAIFake) -> dict[str, str]:
    env = koda.env(OPENAI_API_KEY="sk-test-0000-secret", OPENAI_BASE_URL=fake.base_url)
    env.pop("KODA_SCRIPT")
    return env


def test_a_tool_turn_over_http_with_cost(koda: Koda, openai: OpenAIFake) -> None:
    openai.push(
        Reply(tool_calls=[Call("Read", {"path": "notes.txt"})], prompt_tokens=1000,
              completion_tokens=20),
        Reply(text="The notes say hello.", prompt_tokens=1200, completion_tokens=8),
    )  # fmt: skip
    env = env_for(koda, openai)
    proc = koda.run("-p", "what do the notes say?", "--model", "gpt-4.1", "--output-format",
                    "json", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["provider"], result["model"], result["result"]) == (
        "openai",
        "gpt-4.1",
        "The notes say hello.",
    )
    # gpt-4.1: $2 in and $8 out per million tokens.
    assert result["total_cost_usd"] == pytest.approx((2200 * 2 + 28 * 8) / 1e6)
    chats = openai.chat_bodies
    assert chats[-1]["messages"][-1]["role"] == "tool"
    assert "hello from the notes" in chats[-1]["messages"][-1]["content"]
    auth = [r.headers.get("authorization") for r in openai.requests]
    assert auth.count("Bearer sk-test-0000-secret") >= 2, auth

    show = koda.run("sessions", "show", result["session_id"], env=env)
    assert "cost:      $0.0046" in show.stdout
    export = koda.run("sessions", "export", result["session_id"], "--format", "json", env=env)
    assert "sk-test-0000-secret" not in export.stdout + show.stdout + proc.stderr


def test_a_bad_key_is_one_sentence(koda: Koda, openai: OpenAIFake) -> None:
    from fakes.openai_fake import error_reply

    openai.push(error_reply(401, "Incorrect API key provided: sk-test***cret."))
    proc = koda.run("-p", "hi", "--model", "gpt-4.1", env=env_for(koda, openai))
    assert proc.returncode == 1
    assert "rejected the API key" in proc.stderr and "koda auth login openai" in proc.stderr
    assert "Traceback" not in proc.stderr
