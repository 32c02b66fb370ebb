"""Reasoning tags and chat-template tokens in a streamed answer, sorted out as it streams.

Open-weights models served by local and hosted servers often write their reasoning inline, as
`<think>…</think>` (or `<thinking>`, `<reasoning>`, `<reflection>`) inside the answer text, and
some servers let chat-template tokens such as `<|im_end|>` leak into it. `ThinkTagFilter` is fed
the content deltas one by one and hands back what is answer and what is reasoning, with the
template tokens removed. A tag split across deltas (`<thi` + `nk>`) is held back until it can be
told apart from ordinary text, so nothing is shown twice or in the wrong place.
"""

from __future__ import annotations

from koda.providers.base import TextChunk, ThinkingChunk

THINK_TAGS = ("think", "thinking", "reasoning", "reflection")
TEMPLATE_TOKENS = (
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|assistant|>", "<|user|>",
    "<|system|>", "<|begin_of_box|>", "<|end_of_box|>",
)  # fmt: skip

_OPEN = {f"<{t}>": f"</{t}>" for t in THINK_TAGS}
_CLOSE = tuple(_OPEN.values())
# Outside reasoning: an opening tag starts it; a closing tag with no opening one (a chat template
# that put the opening tag in the prompt) is dropped. Inside: only the matching close ends it.
_OUTSIDE = (*_OPEN, *_CLOSE, *TEMPLATE_TOKENS)


class ThinkTagFilter:
    """Incremental: `feed` each content delta, then `flush` once at the end of the stream."""

    __slots__ = ("_buf", "_close", "_strip")

    def __init__(self) -> None:
        self._buf = ""
        self._close: str | None = None  # the closing tag awaited while inside reasoning
        self._strip = False  # drop whitespace right after a tag (models put newlines there)

    @property
    def thinking(self) -> bool:
        return self._close is not None

    def feed(self, text: str) -> list[TextChunk | ThinkingChunk]:
        if not self._buf and "<" not in text and not self._strip:
            if not text:
                return []
            return [ThinkingChunk(text) if self._close else TextChunk(text)]  # the usual case
        self._buf += text
        out: list[TextChunk | ThinkingChunk] = []
        while True:
            tokens = (*TEMPLATE_TOKENS, self._close) if self._close else _OUTSIDE
            at, token = _first(self._buf, tokens)
            if token is None:
                keep = _partial_tail(self._buf, tokens)
                self._emit(out, self._buf[: len(self._buf) - keep])
                self._buf = self._buf[len(self._buf) - keep :]
                return out
            self._emit(out, self._buf[:at])
            self._buf = self._buf[at + len(token) :]
            if token in _OPEN and self._close is None:
                self._close, self._strip = _OPEN[token], True
            elif token == self._close:
                self._close, self._strip = None, True

    def flush(self) -> list[TextChunk | ThinkingChunk]:
        """What is still held back: a lone `<` or the start of a tag that never completed."""
        out: list[TextChunk | ThinkingChunk] = []
        self._emit(out, self._buf)
        self._buf = ""
        return out

    def _emit(self, out: list[TextChunk | ThinkingChunk], text: str) -> None:
        if self._strip:
            text = text.lstrip()
            if not text:
                return
            self._strip = False
        if not text:
            return
        thinking = self._close is not None
        if out and isinstance(out[-1], ThinkingChunk) == thinking:
            text = out[-1].text + text
            out.pop()
        out.append(ThinkingChunk(text) if thinking else TextChunk(text))


def _first(buf: str, tokens: tuple[str, ...]) -> tuple[int, str | None]:
    best, found = len(buf), None
    if "<" not in buf:
        return best, found
    for token in tokens:
        at = buf.find(token, 0, best + len(token))
        if at != -1 and at < best:
            best, found = at, token
    return best, found


def _partial_tail(buf: str, tokens: tuple[str, ...]) -> int:
    """How many characters at the end of `buf` could be the start of one of `tokens`."""
    at = buf.rfind("<")
    if at == -1:
        return 0
    tail = buf[at:]
    # Every token has its only `<` first, so the last `<` is the only place a token can start.
    return len(tail) if any(t.startswith(tail) for t in tokens) else 0
