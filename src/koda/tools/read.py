"""Read: a text file with line numbers, a window at a time; images and PDFs too."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from koda.providers.base import ImageData
from koda.tools.args import one_line, opt_int, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.paths import display_path, fs_errors, open_parent, resolve_in_project
from koda.tools.schema import FILE_PATH, arguments, integer, string

MAX_LINES = 2000
MAX_BYTES = 100_000
SNIFF_BYTES = 8192
# The APIs refuse an image over 5 MB, counted on its base64 text (4/3 of the file).
MAX_IMAGE_BYTES = 5 * 1024 * 1024 * 3 // 4
MAX_IMAGE_SIDE = 8000  # pixels; Anthropic's limit, the strictest

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def is_binary(head: bytes) -> bool:
    """Git's heuristic: a NUL byte near the start means the file is not text."""
    return b"\0" in head[:SNIFF_BYTES]


def image_type(head: bytes) -> str | None:
    """The media type of a PNG, JPEG, GIF or WebP file, told by its first bytes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _IMAGE_MAGIC if head.startswith(magic)), None)


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def last_seen(ctx: ToolContext, path: Path) -> str | None:
    """The digest of `path` as the model last saw it (read, written or edited), if it did.

    Read records `<digest>@<offset>:<limit>` so that the same window of an unchanged file can
    be answered with a note; Write and Edit record the bare digest.
    """
    recorded = ctx.file_tracker.read_digest(path)
    return recorded.split("@", 1)[0] if recorded else None


@dataclass
class _Window:
    lines: list[str]
    total: int
    cut_line: bool  # the first line alone was over the byte budget and was shortened
    digest: str  # of every byte read, which is the whole file


class Read:
    name = "Read"
    description = (
        "Read a file from the project. Text comes with line numbers (for reference only; "
        "they are not part of the file); long files are cut off with a note: use offset and "
        "limit to read further. Images (PNG, JPEG, GIF, WebP) are shown to you as images; "
        "PDFs as their text."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["path"],
            path=string(FILE_PATH),
            offset=integer("First line to read (1-based)."),
            limit=integer("Number of lines to read."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return f"Read {one_line(args.get('path', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        result, seen = await asyncio.to_thread(self._run, ctx, args)
        if seen is not None:
            ctx.file_tracker.record_read(*seen)
        return result

    def _run(
        self, ctx: ToolContext, args: dict[str, Any]
    ) -> tuple[ToolResult, tuple[Path, str] | None]:
        raw = req_str(args, "path", allow_empty=False)
        max_lines = scaled(ctx, MAX_LINES)
        offset = opt_int(args, "offset", 1, min=1)
        asked = opt_int(args, "limit", 0, min=1)  # 0: not given
        limit = min(asked or max_lines, max_lines)
        path = resolve_in_project(ctx.project_root, raw)
        shown = display_path(ctx.project_root, path)
        if not path.exists():
            raise ToolError(f"File not found: {shown}")
        if path.is_dir():
            raise ToolError(f"{shown} is a directory; use List to see what it contains.")
        with fs_errors(shown), _open(ctx.project_root, path, shown) as f:
            result, digest = _content(f, shown, offset, limit, scaled(ctx, MAX_BYTES))
        seen = f"{digest}@{offset}:{asked or ''}"
        if ctx.file_tracker.read_digest(path) == seen:
            # Same file, same window: the model has this text already; a second copy only
            # costs tokens.
            return ToolResult(
                f"[unchanged since you last read it: {shown}, same lines; that earlier "
                "result is still current. A different offset or limit shows the text again.]"
            ), None
        return result, (path, seen)


def _content(
    f: BinaryIO, shown: str, offset: int, limit: int, max_bytes: int
) -> tuple[ToolResult, str]:
    """What the model gets for the file `f` (told apart by its first bytes), and its digest."""
    head = f.read(SNIFF_BYTES)
    kind = image_type(head)
    if kind is not None:
        data = _image_bytes(f, head, shown, kind)
        width, height = _image_size(kind, data, shown)
        text = (
            f"{shown}: {kind.removeprefix('image/').upper()} image, {width}x{height} pixels, "
            f"{len(data):,} bytes, attached as an image."
        )
        image = ImageData(kind, base64.b64encode(data).decode("ascii"))
        return ToolResult(text, images=[image]), content_digest(data)
    if head.startswith(b"%PDF-"):
        data = head + f.read()
        pages = io.BytesIO(_pdf_text(data, shown).encode("utf-8"))
        window = _read_window(pages, offset, limit, max_bytes)
        return ToolResult(_render(shown, offset, window)), content_digest(data)
    if is_binary(head):
        raise ToolError(
            f"{shown} is a binary file (it contains NUL bytes); Read only shows text, images "
            "and PDFs."
        )
    f.seek(0)
    window = _read_window(f, offset, limit, max_bytes)
    return ToolResult(_render(shown, offset, window)), window.digest


def _open(root: Path, path: Path, shown: str) -> BinaryIO:
    """The file, opened without following a symlink swapped in after the path was checked;
    a pipe or device is refused instead of blocking."""
    with open_parent(root, path) as dir_fd:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ToolError(f"{shown} is not a regular file (a pipe, socket or device).")
    return os.fdopen(fd, "rb")


def _image_bytes(f: BinaryIO, head: bytes, shown: str, kind: str) -> bytes:
    size = os.fstat(f.fileno()).st_size
    if size > MAX_IMAGE_BYTES:
        raise ToolError(
            f"{shown} is a {kind} image of {size / 1_048_576:.1f} MB; images over "
            f"{MAX_IMAGE_BYTES / 1_048_576:.2f} MB cannot be sent to the model. Make a smaller "
            "copy (for example with Bash) and read that."
        )
    return head + f.read()


def _image_size(kind: str, data: bytes, shown: str) -> tuple[int, int]:
    """Width and height from the image's header, refusing images an API would reject: one it
    cannot decode (cut short) or one too large, would fail every later request of the session
    once it is in the history."""
    size = _header_size(kind, data)
    if size is None:
        raise ToolError(f"{shown} looks like a {kind} image but is damaged or cut short.")
    if max(size) > MAX_IMAGE_SIDE:
        raise ToolError(
            f"{shown} is {size[0]}x{size[1]} pixels; images over {MAX_IMAGE_SIDE} pixels on a "
            "side cannot be sent to the model. Make a smaller copy and read that."
        )
    return size


def _header_size(kind: str, data: bytes) -> tuple[int, int] | None:
    if kind == "image/png":
        whole = data[12:16] == b"IHDR" and b"IEND" in data[-32:]
        return (_be(data, 16, 4), _be(data, 20, 4)) if whole else None
    if kind == "image/gif":
        whole = len(data) > 13 and b";" in data[-16:]
        return (_le(data, 6, 2), _le(data, 8, 2)) if whole else None
    if kind == "image/webp":
        if _le(data, 4, 4) + 8 > len(data):
            return None
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + _le(data, 24, 3), 1 + _le(data, 27, 3)
        if chunk == b"VP8L":
            bits = _le(data, 21, 4)
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":
            return _le(data, 26, 2) & 0x3FFF, _le(data, 28, 2) & 0x3FFF
        return None
    return _jpeg_size(data) if b"\xff\xd9" in data[-32:] else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame segment, walking the segments from the start."""
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return _be(data, at + 7, 2), _be(data, at + 5, 2)
        at += 2 + _be(data, at + 2, 2)
    return None


def _be(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at : at + size], "big")


def _le(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at : at + size], "little")


def _pdf_text(data: bytes, shown: str) -> str:
    """The PDF's text, page by page, when the optional pypdf package is installed."""
    try:
        pypdf: Any = importlib.import_module("pypdf")  # optional, and slow to import
    except ImportError:
        raise ToolError(
            f"{shown} is a PDF; reading its text needs the pypdf package, which is not "
            "installed (pip install pypdf). Bash with a tool such as pdftotext may work instead."
        ) from None
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ToolError(f"{shown} is an encrypted PDF; its text cannot be read.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ToolError:
        raise
    except Exception as exc:  # pypdf raises many kinds for damaged files
        raise ToolError(f"Could not read the PDF {shown}: {exc or type(exc).__name__}.") from exc
    if not any(page.strip() for page in pages):
        raise ToolError(
            f"{shown} is a PDF of {len(pages)} page(s) with no extractable text "
            "(it may be scanned images)."
        )
    return "\n".join(f"--- page {n} ---\n{text}" for n, text in enumerate(pages, start=1))


def _read_window(f: BinaryIO, offset: int, count: int, max_bytes: int) -> _Window:
    """Lines offset..offset+count-1, stopping early at the byte budget; counts all lines and
    hashes every byte on the way."""
    lines: list[str] = []
    used, total, full, cut_line = 0, 0, False, False
    hasher = hashlib.sha256()
    for total, raw in enumerate(f, start=1):
        hasher.update(raw)
        if total < offset or full:
            continue
        text = raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
        size = len(text.encode()) + 8  # 8: the line-number prefix
        if used + size > max_bytes:
            if not lines:
                text = text.encode()[:max_bytes].decode("utf-8", errors="ignore")
                lines.append(text)
                cut_line = True
            full = True
            continue
        lines.append(text)
        used += size
        full = len(lines) >= count
    return _Window(lines, total, cut_line, hasher.hexdigest())


def _render(shown: str, offset: int, window: _Window) -> str:
    if window.total == 0:
        return f"{shown} is empty."
    if offset > window.total:
        raise ToolError(f"{shown} has {window.total} lines; offset {offset} is past the end.")
    body = "\n".join(f"{n:>6}\t{line}" for n, line in enumerate(window.lines, start=offset))
    last = offset + len(window.lines) - 1
    notes = []
    if window.cut_line:
        notes.append(
            f"[Line {offset} is longer than the output limit and was cut off; "
            "use Grep or Bash to inspect the rest of it.]"
        )
    if last < window.total:
        notes.append(
            f"[Showing lines {offset}-{last} of {window.total}. "
            f"Use offset={last + 1} to read more.]"
        )
    return "\n".join([body, *notes])
