"""Compaction: when the conversation no longer fits the model, older turns become a summary.

The current prompt and everything after it stay word for word; what came before is summarised
by the same model in one request. The old rows stay in the store, marked compacted.
"""

from __future__ import annotations

from koda.engine.history import build_history
from koda.providers.base import ChatRequest, LlmProvider, Message, TextChunk
from koda.store import MessageRow, Store

SUMMARY_HEADER = "[Summary of the earlier part of this conversation, made to save context]"
PER_MESSAGE_CHARS = 2000
SUMMARY_TOKENS = 4096

INSTRUCTIONS = """\
You write the memory of a coding session that is too long to continue in full. Summarise the \
transcript below so the work can go on without it. Keep, as short bullet points:
1. What the user asked for, in their words where it matters.
2. Decisions made and why.
3. Files read or changed, with the important details (names, functions, line ranges).
4. Errors met and how they were fixed.
5. Where the work stands now, and what is left to do.
Do not invent anything that is not in the transcript."""


class CompactionError(Exception):
    """Compaction cannot help; the message says what the user can do."""


def split_point(rows: list[MessageRow]) -> int | None:
    """Index of the row the kept tail starts at: the latest prompt the user typed."""
    for i in range(len(rows) - 1, -1, -1):
        if rows[i].role == "user" and rows[i].is_complete:
            return i
    return None


def transcript(rows: list[MessageRow], budget_chars: int) -> str:
    """The rows as plain text, oldest dropped first when over the budget."""
    parts = []
    for row in rows:
        text = row.content
        if row.tool_calls:
            calls = ", ".join(f"{c.get('name')}({c.get('arguments')})" for c in row.tool_calls)
            text = f"{text}\n[called {calls}]".strip()
        if len(text) > PER_MESSAGE_CHARS:
            text = text[:PER_MESSAGE_CHARS] + " […]"
        parts.append(f"[{row.role}] {text}")
    while parts and sum(len(p) + 2 for p in parts) > budget_chars:
        parts.pop(0)
    return "\n\n".join(parts)


async def summarise(provider: LlmProvider, model: str, text: str) -> str:
    request = ChatRequest(
        model=model,
        system=INSTRUCTIONS,
        messages=[Message(role="user", content=text)],
        tools=[],
        max_tokens=SUMMARY_TOKENS,
    )
    out = []
    async for chunk in provider.stream(request):
        if isinstance(chunk, TextChunk):
            out.append(chunk.text)
    return "".join(out).strip()


async def compact(db: Store, session_id: str, provider: LlmProvider, model: str) -> list[Message]:
    """Summarise all but the current prompt's exchange; returns the new history."""
    rows = [r for r in db.messages.load(session_id) if r.role != "system"]
    cut = split_point(rows)
    if cut is None or cut == 0:
        raise CompactionError(
            "the conversation does not fit the model's context window even without its earlier "
            "turns; start a new session or use a model with a larger context window"
        )
    window = provider.capabilities(model).context_window
    # About 3 characters a token, leaving room for the instructions and the summary itself.
    budget = max(4000, (window - SUMMARY_TOKENS - 1000) * 3)
    summary = await summarise(provider, model, transcript(rows[:cut], budget))
    if not summary:
        raise CompactionError("the model returned an empty summary, so nothing was compacted")
    db.messages.compact(session_id, f"{SUMMARY_HEADER}\n\n{summary}", rows[cut].id)
    return build_history(db.messages.load(session_id))
