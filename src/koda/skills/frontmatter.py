"""The YAML front matter of a SKILL.md, read without a YAML library.

Skill headers use a small subset: `key: value` lines, quoted strings, `|`/`>` block scalars and
lists as `[a, b]` or `- item` lines. Reading only that subset avoids a dependency and YAML 1.1's
surprises (`name: no` becoming False); anything else is reported as an error, never guessed.
"""

from __future__ import annotations

import re

# A value this parser does not read (a nested mapping); it is kept so the key is still known.
Value = str | list[str] | None

_KEY = re.compile(r"^([^\s:#'\"\[\]{}-][^:]*?)\s*:(?:\s+(.*))?$")
_BLOCK = re.compile(r"^([|>])[-+]?[1-9]?$")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}


class FrontMatterError(ValueError):
    """The header cannot be read; the message says where and why, for a person."""


def split_front_matter(text: str) -> tuple[dict[str, Value], str]:
    """The header's keys and the Markdown body after it."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise FrontMatterError("it does not start with a '---' line opening the front matter")
    for end in range(1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            return parse_header(lines[1:end]), "\n".join(lines[end + 1 :])
    raise FrontMatterError("its front matter has no closing '---' line")


def parse_header(lines: list[str]) -> dict[str, Value]:
    values: dict[str, Value] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if _skippable(line):
            i += 1
            continue
        number = i + 2  # 1-based, after the opening '---'
        if line[0] in " \t":
            raise FrontMatterError(f"line {number} is indented but belongs to no key")
        match = _KEY.match(line.rstrip())
        if match is None:
            raise FrontMatterError(f"line {number} is not 'key: value'")
        key, rest = match.group(1), (match.group(2) or "").strip()
        if rest.startswith("#"):  # `key: # note` has no value, only a comment
            rest = ""
        if key in values:
            raise FrontMatterError(f"the key '{key}' appears twice")
        # `- item` lines at column 0 are a list only under a key with nothing after the colon.
        block, i = _indented_block(lines, i + 1, items=not rest)
        values[key] = _value(rest, block, number)
    return values


def _skippable(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _indented_block(lines: list[str], start: int, *, items: bool) -> tuple[list[str], int]:
    """The lines after a key that belong to it: indented ones (and `- item` ones if `items`)."""
    end = start
    while end < len(lines):
        line = lines[end]
        item = items and (line.startswith("- ") or line.rstrip() == "-")
        if line.strip() and line[0] not in " \t" and not item:
            break
        end += 1
    block = lines[start:end]
    while block and not block[-1].strip():
        block.pop()
    return block, end


def _value(rest: str, block: list[str], number: int) -> Value:
    if _BLOCK.match(rest):
        return _block_scalar(rest[0], block)
    content = [line for line in block if not _skippable(line)]
    if rest:
        if rest.startswith("["):
            if content:
                raise FrontMatterError(f"line {number}: a [list] cannot continue on later lines")
            return _flow_list(rest, number)
        if rest[0] in "'\"":
            if content:
                raise FrontMatterError(f"line {number}: a quoted value must fit on its line")
            return _quoted(rest, number)
        # A plain value may wrap onto indented lines; YAML joins them with spaces.
        return " ".join([_plain(rest), *(line.strip() for line in content)])
    if not content:
        return ""
    if all(line.lstrip().startswith("- ") or line.strip() == "-" for line in content):
        return [_item(line.lstrip()[1:].strip(), number) for line in content]
    if any(_KEY.match(line.strip()) for line in content):
        return None  # a nested mapping, which no skill key needs
    return " ".join(line.strip() for line in content)


def _block_scalar(style: str, block: list[str]) -> str:
    indents = [len(line) - len(line.lstrip()) for line in block if line.strip()]
    cut = min(indents, default=0)
    texts = [line[cut:] for line in block]
    if style == "|":
        return "\n".join(texts).strip()
    # Folded: lines of a paragraph join with spaces, blank lines separate paragraphs.
    paragraphs = "\n".join(texts).split("\n\n")
    return "\n".join(" ".join(p.split("\n")).strip() for p in paragraphs).strip()


def _item(text: str, number: int) -> str:
    if text[:1] in ("'", '"'):
        return _quoted(text, number)
    if _KEY.match(text):
        raise FrontMatterError(f"line {number}: list items must be plain values, not mappings")
    return _plain(text)


def _flow_list(text: str, number: int) -> list[str]:
    if not text.endswith("]"):
        raise FrontMatterError(f"line {number}: a list opened with '[' is not closed with ']'")
    items: list[str] = []
    current = ""
    quote = ""
    for char in text[1:-1]:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current += char
        elif char in "[]{}":
            raise FrontMatterError(f"line {number}: nested lists or mappings are not supported")
        elif char == ",":
            items.append(current.strip())
            current = ""
        else:
            current += char
    if quote:
        raise FrontMatterError(f"line {number}: a quote inside the list is not closed")
    items.append(current.strip())
    if items == [""]:
        return []
    if "" in items:
        raise FrontMatterError(f"line {number}: the list has an empty item")
    return [_quoted(item, number) if item[0] in "'\"" else item for item in items]


def _quoted(text: str, number: int) -> str:
    quote = text[0]
    body, closed, i = "", False, 1
    while i < len(text):
        char = text[i]
        if quote == "'" and char == "'":
            if text[i + 1 : i + 2] == "'":  # '' is a quote inside a single-quoted string
                body, i = body + "'", i + 2
                continue
            closed = True
            break
        if quote == '"' and char == "\\" and i + 1 < len(text):
            body, i = body + _ESCAPES.get(text[i + 1], "\\" + text[i + 1]), i + 2
            continue
        if quote == '"' and char == '"':
            closed = True
            break
        body, i = body + char, i + 1
    if not closed:
        raise FrontMatterError(f"line {number}: a quoted value is not closed")
    after = text[i + 1 :].strip()
    if after and not after.startswith("#"):
        raise FrontMatterError(f"line {number}: unexpected text after a quoted value")
    return body


def _plain(text: str) -> str:
    # " #" starts a comment in a plain value; "#" inside a word (C#) does not.
    return re.split(r"\s#", text, maxsplit=1)[0].strip()
