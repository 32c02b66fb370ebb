"""A session title taken from the first prompt, so naming a session costs no model request."""

from __future__ import annotations

import re

MAX_TITLE = 60


def title_from_prompt(prompt: str) -> str:
    words = re.sub(r"\s+", " ", prompt).strip()
    if not words:
        return "Untitled session"
    if len(words) <= MAX_TITLE:
        return words
    cut = words[:MAX_TITLE].rsplit(" ", 1)[0] or words[:MAX_TITLE]
    return cut.rstrip(" ,.;:") + "…"
