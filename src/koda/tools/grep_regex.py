"""Grep's regex contract is Python's `re`; this is how a pattern runs fast without changing that.

Both helpers start from Python's own parse of the pattern, so no syntax is guessed:

- `for_ripgrep` writes a Rust-regex pattern for `rg` that matches AT LEAST every line the Python
  pattern matches. rg only picks the files worth reading and Python then finds the lines, so a
  wider rg pattern costs time, never a result. Character sets become explicit code-point classes
  computed by Python (its \\w, \\d, \\s and case-insensitive equivalences differ from Rust's); a
  set that can match U+FFFD also matches the invalid UTF-8 bytes Python decodes to it; `$` also
  matches before a CR. What rg cannot run (lookarounds, word boundaries, backreferences,
  conditionals) is widened away. A construct it does not know gives None: Python searches alone.
- `whole_text` compiles the pattern to search a whole file at once, when that can find more than
  the line-by-line search but never less; only the lines where it matches are then checked.
"""

from __future__ import annotations

import array
import functools
import importlib
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

# Python's regex parser: private, but the only exact reading of a pattern. Any surprise in its
# output (another Python version) is met by falling back to the Python search.
_parser: Any = importlib.import_module("re._parser")

MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
_REPLACEMENT = 0xFFFD
# Python decodes each invalid UTF-8 sequence (1 to 3 bytes) to one U+FFFD; rg sees the bytes.
_INVALID_UTF8 = r"(?-u:[\x80-\xFF]){1,3}"
_ANY_TEXT = r"(?-u:[\x00-\x09\x0B-\xFF])*"
_LINE_END = r"(?:\r?$)"
# Repetition counts above this are widened (a{5000} becomes a{100,}): same lines or more, and
# rg's compiled size stays small.
_MAX_COUNT = 100
_CASED_END = 0x20000 - (_SURROGATES[1] - _SURROGATES[0] + 1)  # index of U+20000 in _all_chars()

Ranges = list[tuple[int, int]]


class _Unsupported(Exception):
    pass


def for_ripgrep(pattern: str, flags: int) -> str | None:
    """An rg pattern matching at least the lines `re.compile(pattern, flags)` matches, or None."""
    try:
        parsed = _parser.parse(pattern, flags)
        return _Writer().sequence(parsed, parsed.state.flags)
    except (_Unsupported, re.error, AttributeError, TypeError, ValueError, RecursionError):
        return None


def whole_text(pattern: str, flags: int) -> re.Pattern[str] | None:
    """The pattern for searching a whole file at once, or None when only line by line is exact.

    Searching the text (lines joined by "\\n") with MULTILINE finds a match starting in every
    line that matches alone: `^`, `$` and `\\b` see "\\n" as they see a line's ends. What can
    look past a line's end (lookarounds, `\\A`, `\\Z`, MULTILINE switched off inside) or refuse
    to backtrack out of the next line (atomic groups, possessive repeats) rules it out.
    """
    try:
        if not _line_local(_parser.parse(pattern, flags)):
            return None
        return re.compile(pattern, flags | re.MULTILINE)
    except (re.error, AttributeError, TypeError, ValueError, RecursionError):
        return None


_NOT_LINE_LOCAL = {"ASSERT", "ASSERT_NOT", "ATOMIC_GROUP", "POSSESSIVE_REPEAT"}


def _line_local(items: Iterable[tuple[Any, Any]]) -> bool:
    for op, av in items:
        name = str(op)
        if name in _NOT_LINE_LOCAL:
            return False
        if name == "AT" and str(av) in ("AT_BEGINNING_STRING", "AT_END_STRING"):
            return False
        if name == "SUBPATTERN" and av[2] & re.MULTILINE:
            return False
        if not all(_line_local(child) for child in _children(name, av)):
            return False
    return True


def _children(name: str, av: Any) -> list[Any]:
    if name == "SUBPATTERN":
        return [av[3]]
    if name in ("MAX_REPEAT", "MIN_REPEAT"):
        return [av[2]]
    if name == "BRANCH":
        return list(av[1])
    if name == "GROUPREF_EXISTS":
        return [av[1], av[2] or []]
    return []


class _Writer:
    def sequence(self, items: Iterable[tuple[Any, Any]], flags: int) -> str:
        return "".join(self.item(str(op), av, flags) for op, av in items)

    def item(self, op: str, av: Any, flags: int) -> str:
        if op in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            return _char_set(op, av, flags)
        if op == "AT":
            return _anchor(str(av))
        if op == "SUBPATTERN":
            _, add, remove, body = av
            return _group(self.sequence(body, (flags | add) & ~remove))
        if op == "ATOMIC_GROUP":
            return _group(self.sequence(av, flags))
        if op == "BRANCH":
            return "(?:" + "|".join(self.sequence(b, flags) for b in av[1]) + ")"
        if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = av
            return _repeat(self.sequence(body, flags), low, high)
        if op in ("ASSERT", "ASSERT_NOT"):
            return ""
        if op == "GROUPREF":
            return _ANY_TEXT
        if op == "GROUPREF_EXISTS":
            _, yes, no = av
            return "(?:" + self.sequence(yes, flags) + "|" + self.sequence(no or [], flags) + ")"
        raise _Unsupported(op)


def _group(body: str) -> str:
    return "(?:" + body + ")" if body else ""


def _repeat(body: str, low: int, high: int) -> str:
    if not body:
        return ""
    low = min(low, _MAX_COUNT)
    if high > _MAX_COUNT:
        return f"(?:{body}){{{low},}}"
    return f"(?:{body}){{{low},{high}}}"


def _anchor(name: str) -> str:
    if name in ("AT_BEGINNING", "AT_BEGINNING_LINE", "AT_BEGINNING_STRING"):
        return "^"
    if name in ("AT_END", "AT_END_LINE", "AT_END_STRING"):
        return _LINE_END
    if name in ("AT_BOUNDARY", "AT_NON_BOUNDARY"):
        # Python's and Rust's word characters differ; dropping the test only widens.
        return ""
    raise _Unsupported(name)


def _char_set(op: str, av: Any, flags: int) -> str:
    ranges = _sensitive(op, av, flags)
    if flags & re.IGNORECASE:
        ranges = _union(ranges, _cased_matches(_python_source(op, av), flags))
    # Lines never hold "\n", and rg refuses a pattern that could match one.
    ranges = _difference(ranges, [(0x0A, 0x0A)])
    text = _class(ranges)
    if _contains(ranges, _REPLACEMENT):
        return f"(?:{text}|{_INVALID_UTF8})"
    return text


def _sensitive(op: str, av: Any, flags: int) -> Ranges:
    """The code points the node matches with case taken literally."""
    if op == "LITERAL":
        return [(av, av)]
    if op == "NOT_LITERAL":
        return _complement([(av, av)])
    if op == "ANY":
        return _complement([])
    negate = False
    ranges: Ranges = []
    for kind, value in av:
        kind = str(kind)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            ranges.append((value, value))
        elif kind == "RANGE":
            ranges.append((value[0], value[1]))
        elif kind == "CATEGORY":
            ranges.extend(_category(str(value), bool(flags & re.ASCII)))
        else:
            raise _Unsupported(kind)
    merged = _union(ranges, [])
    return _complement(merged) if negate else merged


_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}


def _python_source(op: str, av: Any) -> str:
    """The node alone as Python regex text, to ask Python which characters it matches."""
    if op == "LITERAL":
        return _py_char(av)
    if op == "NOT_LITERAL":
        return "[^" + _py_char(av) + "]"
    if op == "ANY":
        return "(?s:.)"
    parts = []
    for kind, value in av:
        kind = str(kind)
        if kind == "NEGATE":
            parts.append("^")
        elif kind == "LITERAL":
            parts.append(_py_char(value))
        elif kind == "RANGE":
            parts.append(_py_char(value[0]) + "-" + _py_char(value[1]))
        elif kind == "CATEGORY" and str(value) in _CATEGORIES:
            parts.append(_CATEGORIES[str(value)])
        else:
            raise _Unsupported(kind)
    return "[" + "".join(parts) + "]"


def _py_char(code: int) -> str:
    return f"\\U{code:08x}"


@functools.cache
def _category(name: str, ascii_only: bool) -> Ranges:
    """The code points Python's \\d, \\w, \\s (or their negations) match, found by Python."""
    if name not in _CATEGORIES:
        raise _Unsupported(name)
    found = _finditer_ranges(_CATEGORIES[name], re.ASCII if ascii_only else 0, _all_chars())
    return found


def _cased_matches(source: str, flags: int) -> Ranges:
    """The cased characters a case-insensitive node matches (other characters match as is)."""
    regex = re.compile(source, flags & (re.IGNORECASE | re.ASCII))
    return _union([(ord(c), ord(c)) for c in _cased_chars() if regex.fullmatch(c)], [])


@functools.cache
def _all_chars() -> str:
    # Every code point a decoded line can hold: surrogates never come out of the decoder.
    codes = array.array("I", range(_SURROGATES[0]))
    codes.extend(range(_SURROGATES[1] + 1, MAX_CODE_POINT + 1))
    return codes.tobytes().decode(f"utf-32-{'le' if sys.byteorder == 'little' else 'be'}")


@functools.cache
def _cased_chars() -> str:
    # Python's case-insensitive matching compares simple lower/upper cases, so only characters
    # that have one (or are one) can match differently from how they are written. All of them
    # lie in planes 0 and 1 (the last is U+1E943); planes 2 and up hold uncased scripts.
    chars = set()
    for c in _all_chars()[:_CASED_END]:
        lower, upper = c.lower(), c.upper()
        if lower != c or upper != c:
            chars.add(c)
            chars.update(x for x in (lower, upper) if len(x) == 1)
    return "".join(sorted(chars))


def _finditer_ranges(source: str, flags: int, text: str) -> Ranges:
    ranges = []
    for m in re.finditer(f"(?:{source})+", text, flags):
        ranges.append((ord(text[m.start()]), ord(text[m.end() - 1])))
    # A run crossing the surrogate gap is one match here but two ranges of code points.
    return _union([r for lo, hi in ranges for r in _split_surrogates(lo, hi)], [])


def _split_surrogates(lo: int, hi: int) -> Ranges:
    if lo < _SURROGATES[0] and hi > _SURROGATES[1]:
        return [(lo, _SURROGATES[0] - 1), (_SURROGATES[1] + 1, hi)]
    return [(lo, hi)]


def _union(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> Ranges:
    merged: Ranges = []
    for lo, hi in sorted([*a, *b]):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    nxt = 0
    for lo, hi in _union(ranges, [_SURROGATES]):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= MAX_CODE_POINT:
        out.append((nxt, MAX_CODE_POINT))
    return out


def _difference(ranges: Ranges, remove: Ranges) -> Ranges:
    return _complement(_union(_complement(ranges), remove))


def _contains(ranges: Ranges, code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


def _class(ranges: Ranges) -> str:
    if not ranges:
        # A set nothing is in: the complement of every scalar value.
        return r"[^\x{0}-\x{D7FF}\x{E000}-\x{10FFFF}]"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1] and chr(ranges[0][0]).isascii():
        char = chr(ranges[0][0])
        if char.isalnum():
            return char
    body = "".join(
        f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in ranges
    )
    return "[" + body + "]"
