"""Read against real files: numbering, windows, caps, images, PDFs, what the model has seen,
and the files it must refuse."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from koda.cancel import CancelToken
from koda.engine.file_tracker import FileTracker
from koda.store import Store
from koda.tools import read as read_module
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.read import MAX_IMAGE_BYTES, Read, last_seen


async def read(ctx: ToolContext, **args: Any) -> ToolResult:
    return await Read().run(ctx, args)


def write_lines(path: Path, count: int, width: int = 0) -> None:
    path.write_text("".join(f"line {n}{'x' * width}\n" for n in range(1, count + 1)))


async def test_lines_are_numbered(ctx: ToolContext, root: Path) -> None:
    (root / "app.py").write_text("first\n  second\n\nfourth\n")
    result = await read(ctx, path="app.py")
    assert result.ok
    assert result.output == "     1\tfirst\n     2\t  second\n     3\t\n     4\tfourth"


async def test_offset_and_limit_select_a_window_with_a_note(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "f.txt", 10)
    result = await read(ctx, path="f.txt", offset=3, limit=2)
    lines = result.output.splitlines()
    assert lines[:2] == ["     3\tline 3", "     4\tline 4"]
    assert "Showing lines 3-4 of 10" in result.output
    assert "offset=5" in result.output


async def test_numeric_strings_are_accepted_for_offset(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "f.txt", 5)
    result = await read(ctx, path="f.txt", offset="5")
    assert result.output == "     5\tline 5"


@pytest.mark.parametrize(("args", "message"), [
    ({"offset": "abc"}, "'offset' must be an integer"),
    ({"offset": 0}, "'offset' must be at least 1"),
    ({"limit": True}, "'limit' must be an integer"),
])  # fmt: skip
async def test_bad_window_arguments_are_refused(
    ctx: ToolContext, root: Path, args: dict[str, Any], message: str
) -> None:
    write_lines(root / "f.txt", 5)
    with pytest.raises(ToolError, match=message):
        await read(ctx, path="f.txt", **args)


async def test_offset_past_the_end_says_how_long_the_file_is(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "f.txt", 3)
    with pytest.raises(ToolError, match="has 3 lines; offset 9 is past the end"):
        await read(ctx, path="f.txt", offset=9)


async def test_long_file_is_capped_at_2000_lines_with_how_to_continue(
    ctx: ToolContext, root: Path
) -> None:
    write_lines(root / "big.txt", 2500)
    ctx.context_window = 100_000  # factor 1: the base caps apply
    result = await read(ctx, path="big.txt")
    numbered = [line for line in result.output.splitlines() if "\t" in line]
    assert len(numbered) == 2000
    assert numbered[-1] == "  2000\tline 2000"
    assert "Showing lines 1-2000 of 2500. Use offset=2001" in result.output


async def test_cap_grows_with_the_context_window(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "big.txt", 2500)
    ctx.context_window = 400_000
    result = await read(ctx, path="big.txt")
    assert "  2500\tline 2500" in result.output
    assert "Showing" not in result.output


async def test_output_is_capped_by_bytes(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "wide.txt", 500, width=1000)
    ctx.context_window = 100_000
    result = await read(ctx, path="wide.txt")
    assert 90_000 < len(result.output) < 110_000
    assert "of 500. Use offset=" in result.output


async def test_one_huge_line_is_cut_with_a_note(ctx: ToolContext, root: Path) -> None:
    (root / "min.js").write_text("x" * 300_000 + "\nsecond\n")
    ctx.context_window = 100_000
    result = await read(ctx, path="min.js")
    assert len(result.output) < 110_000
    assert "Line 1 is longer than the output limit" in result.output
    assert "Use offset=2" in result.output


async def test_binary_file_is_refused_with_a_note(ctx: ToolContext, root: Path) -> None:
    (root / "prog").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    with pytest.raises(ToolError, match=r"prog is a binary file"):
        await read(ctx, path="prog")


async def test_non_utf8_text_is_read_with_replacement(ctx: ToolContext, root: Path) -> None:
    (root / "latin.txt").write_bytes(b"caf\xe9 au lait\nplain\n")
    result = await read(ctx, path="latin.txt")
    assert result.output.splitlines()[0] == "     1\tcaf\ufffd au lait"


async def test_crlf_line_endings_are_not_shown(ctx: ToolContext, root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    result = await read(ctx, path="win.txt")
    assert result.output == "     1\tone\n     2\ttwo"


async def test_empty_file_says_so(ctx: ToolContext, root: Path) -> None:
    (root / "empty.txt").write_bytes(b"")
    result = await read(ctx, path="empty.txt")
    assert result.output == "empty.txt is empty."


async def test_missing_file(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"^File not found: nope\.txt$"):
        await read(ctx, path="nope.txt")


async def test_directory_suggests_list(ctx: ToolContext, root: Path) -> None:
    (root / "src").mkdir()
    with pytest.raises(ToolError, match="src is a directory; use List"):
        await read(ctx, path="src")


async def test_fifo_is_refused_instead_of_blocking(ctx: ToolContext, root: Path) -> None:
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolError, match="pipe is not a regular file"):
        await read(ctx, path="pipe")


async def test_outside_files_are_refused(ctx: ToolContext, root: Path, outside: Path) -> None:
    (root / "link").symlink_to(outside / "secret.txt")
    for raw in ["../outside/secret.txt", str(outside / "secret.txt"), "link"]:
        with pytest.raises(ToolError, match="outside the project"):
            await read(ctx, path=raw)


@pytest.mark.parametrize("args", [{}, {"path": ""}, {"path": 42}])
async def test_missing_or_bad_path_argument(ctx: ToolContext, args: dict[str, Any]) -> None:
    with pytest.raises(ToolError, match="path"):
        await Read().run(ctx, args)


def test_read_is_read_only_and_summarised() -> None:
    assert Read().effect({"path": "x"}) is Effect.READ_ONLY
    assert Read().summary({"path": "src/app.py"}) == "Read src/app.py"


# Images


def png(width: int, height: int) -> bytes:
    """A real PNG: grey pixels, one IDAT, as any decoder reads it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return b"".join([
        b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(rows)),
        chunk(b"IEND", b""),
    ])  # fmt: skip


GIF = (
    b"GIF89a\x03\x00\x02\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x03\x00\x02\x00\x00\x02\x02D\x01\x00;"
)


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0\x00\x0b\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x00" + b"\xff\xd9"


def webp(width: int, height: int) -> bytes:
    bits = (width - 1) | (height - 1) << 14
    body = b"VP8L" + (5).to_bytes(4, "little") + b"\x2f" + bits.to_bytes(4, "little") + b"\x00"
    return b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WEBP" + body


@pytest.mark.parametrize(("name", "data", "kind", "size"), [
    ("shot.png", png(64, 48), "image/png", "64x48"),
    ("photo.jpg", jpeg(640, 480), "image/jpeg", "640x480"),
    ("anim.gif", GIF, "image/gif", "3x2"),
    ("pic.webp", webp(300, 200), "image/webp", "300x200"),
    ("no-extension", png(2, 2), "image/png", "2x2"),  # told by content, not by name
])  # fmt: skip
async def test_images_come_back_as_image_content(
    ctx: ToolContext, root: Path, name: str, data: bytes, kind: str, size: str
) -> None:
    (root / name).write_bytes(data)
    result = await read(ctx, path=name)
    assert result.ok
    [image] = result.images
    assert image.media_type == kind
    assert base64.b64decode(image.data) == data
    assert result.output.startswith(f"{name}: ")
    assert f"{size} pixels, {len(data):,} bytes" in result.output
    assert len(result.output) < 120  # a short line, not the bytes


async def test_a_text_file_named_png_is_read_as_text(ctx: ToolContext, root: Path) -> None:
    (root / "fake.png").write_text("not an image\n")
    result = await read(ctx, path="fake.png")
    assert result.images == []
    assert result.output == "     1\tnot an image"


async def test_an_image_too_large_to_send_is_refused_with_a_note(
    ctx: ToolContext, root: Path
) -> None:
    big = png(16, 16)
    padded = big[:-12] + b"\x00" * (MAX_IMAGE_BYTES + 1) + big[-12:]  # still ends with IEND
    (root / "huge.png").write_bytes(padded)
    with pytest.raises(ToolError, match=r"huge\.png is a image/png image of 3\.8 MB"):
        await read(ctx, path="huge.png")


async def test_an_image_too_wide_for_the_apis_is_refused(ctx: ToolContext, root: Path) -> None:
    (root / "wide.jpg").write_bytes(jpeg(9000, 10))
    with pytest.raises(ToolError, match=r"9000x10 pixels; images over 8000 pixels"):
        await read(ctx, path="wide.jpg")


@pytest.mark.parametrize("data", [
    png(8, 8)[:40],  # cut short: no IEND
    jpeg(8, 8)[:-2],  # no end-of-image marker
    webp(8, 8)[:-3],  # shorter than its RIFF size
    b"RIFF\x04\x00\x00\x00WEBPXXXX",  # an unknown WebP chunk
])  # fmt: skip
async def test_a_damaged_image_is_refused_rather_than_sent(
    ctx: ToolContext, root: Path, data: bytes
) -> None:
    # Sent, it would make the API refuse this and every later request of the session.
    (root / "bad.img").write_bytes(data)
    with pytest.raises(ToolError, match="damaged or cut short"):
        await read(ctx, path="bad.img")


# PDFs


def pdf(*pages: str) -> bytes:
    """A real PDF with one line of Helvetica text per page."""
    count = len(pages)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (4 + 2 * n) for n in range(count)), count),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for n, text in enumerate(pages):
        stream = b"BT /F1 12 Tf 20 100 Td (%s) Tj ET" % text.encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * n)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % at for at in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref,
    )  # fmt: skip
    return bytes(out)


async def test_pdf_text_is_read_with_line_numbers(ctx: ToolContext, root: Path) -> None:
    pytest.importorskip("pypdf")
    (root / "paper.pdf").write_bytes(pdf("Hello from page one", "And page two"))
    result = await read(ctx, path="paper.pdf")
    assert result.output.splitlines() == [
        "     1\t--- page 1 ---",
        "     2\tHello from page one",
        "     3\t--- page 2 ---",
        "     4\tAnd page two",
    ]
    window = await read(ctx, path="paper.pdf", offset=3, limit=1)
    assert window.output.splitlines()[0] == "     3\t--- page 2 ---"
    assert "Showing lines 3-3 of 4" in window.output


async def test_pdf_without_pypdf_says_what_is_missing(
    ctx: ToolContext, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pypdf", None)  # import pypdf now raises ImportError
    (root / "paper.pdf").write_bytes(pdf("Hello"))
    with pytest.raises(ToolError, match=r"paper\.pdf is a PDF; reading its text needs the pypdf"):
        await read(ctx, path="paper.pdf")


async def test_damaged_and_textless_pdfs_are_clear_errors(ctx: ToolContext, root: Path) -> None:
    pytest.importorskip("pypdf")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n\x00\x01garbage")
    with pytest.raises(ToolError, match=r"Could not read the PDF broken\.pdf"):
        await read(ctx, path="broken.pdf")
    (root / "blank.pdf").write_bytes(pdf(""))
    with pytest.raises(ToolError, match="no extractable text"):
        await read(ctx, path="blank.pdf")


# What the model has seen


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_every_read_records_the_files_digest(
    ctx: ToolContext, root: Path, tracker: Any
) -> None:
    write_lines(root / "f.txt", 3000)
    ctx.context_window = 100_000
    await read(ctx, path="f.txt", offset=10, limit=5)
    # The whole file's digest, even for a window: that is what Edit compares with.
    key = (root / "f.txt").resolve()
    assert tracker.reads[key] == f"{digest((root / 'f.txt').read_bytes())}@10:5"
    assert last_seen(ctx, key) == digest((root / "f.txt").read_bytes())


async def test_a_second_read_of_an_unchanged_file_is_a_short_note(
    ctx: ToolContext, root: Path
) -> None:
    (root / "app.py").write_text("x = 1\ny = 2\n")
    first = await read(ctx, path="app.py")
    assert "x = 1" in first.output
    again = await read(ctx, path="app.py")
    assert again.ok
    assert again.output.startswith("[unchanged since you last read it: app.py")
    assert "x = 1" not in again.output


async def test_a_changed_file_or_another_window_is_shown_again(
    ctx: ToolContext, root: Path
) -> None:
    write_lines(root / "f.txt", 10)
    await read(ctx, path="f.txt", offset=1, limit=5)
    other = await read(ctx, path="f.txt", offset=6, limit=5)
    assert "line 6" in other.output
    back = await read(ctx, path="f.txt", offset=1, limit=5)
    assert "line 1" in back.output  # only the last window is remembered
    (root / "f.txt").write_text("line 1 changed\n")
    changed = await read(ctx, path="f.txt", offset=1, limit=5)
    assert "line 1 changed" in changed.output


async def test_an_unchanged_image_is_not_sent_twice(ctx: ToolContext, root: Path) -> None:
    (root / "shot.png").write_bytes(png(4, 4))
    assert len((await read(ctx, path="shot.png")).images) == 1
    again = await read(ctx, path="shot.png")
    assert again.images == []
    assert "unchanged since you last read it" in again.output


async def test_a_failed_read_records_nothing(ctx: ToolContext, root: Path, tracker: Any) -> None:
    write_lines(root / "f.txt", 3)
    with pytest.raises(ToolError):
        await read(ctx, path="f.txt", offset=9)
    (root / "prog").write_bytes(b"\x00\x01")
    with pytest.raises(ToolError):
        await read(ctx, path="prog")
    assert tracker.reads == {}


async def test_a_symlink_swapped_in_after_the_check_is_not_followed(
    ctx: ToolContext, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "notes.txt").write_text("inside\n")
    real = read_module.resolve_in_project

    def resolve_then_swap(*args: Any, **kwargs: Any) -> Path:
        resolved = real(*args, **kwargs)
        (root / "sub").rename(root / "sub.old")
        (root / "sub").symlink_to(outside, target_is_directory=True)
        (outside / "notes.txt").write_text("outside secret\n")
        return resolved

    monkeypatch.setattr(read_module, "resolve_in_project", resolve_then_swap)
    with pytest.raises(ToolError, match="replaced by a symbolic link"):
        await read(ctx, path="sub/notes.txt")


async def test_the_engine_tracker_forgets_reads_so_files_are_shown_again(
    root: Path, tmp_path: Path
) -> None:
    # After compaction the model no longer has the text: the engine calls forget_reads().
    (root / "app.py").write_text("x = 1\n")
    db = Store.open(tmp_path / "koda.db")
    try:
        tracker = FileTracker(db, "s1")
        engine_ctx = ToolContext(root, CancelToken(), tracker)
        await read(engine_ctx, path="app.py")
        assert "unchanged" in (await read(engine_ctx, path="app.py")).output
        tracker.forget_reads()
        assert (await read(engine_ctx, path="app.py")).output == "     1\tx = 1"
    finally:
        db.close()
