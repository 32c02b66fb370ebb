"""Moving bytes between a client and the host it reached, and closing both ends properly.

Reads are large and every write waits for the peer to drain (backpressure), so a tunnel costs
a few system calls per 256 KiB and never buffers more than the transports' high-water marks.
An end-of-file from one side is passed on as a half-close; the tunnel ends when both sides are
done, or at once when either one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

CHUNK = 256 * 1024  # as much as an asyncio transport reads at once


@dataclass(frozen=True, slots=True)
class Conn:
    """One TCP or Unix stream connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def abort(self) -> None:
        self.writer.transport.abort()

    async def close(self) -> None:
        """Close after the buffered bytes are sent; a peer that never reads waits for stop()."""
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end-of-file, then half-close the writer."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def copy_exactly(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int
) -> None:
    """Copy `count` bytes (a request body), then nothing more."""
    while count > 0:
        data = await reader.read(min(CHUNK, count))
        if not data:
            raise ConnectionError("the client closed the connection inside the request body")
        count -= len(data)
        writer.write(data)
        await writer.drain()


async def relay(client: Conn, server: Conn, upload_limit: int | None = None) -> None:
    """Relay both ways and close both connections.

    With `upload_limit`, only that many bytes go from the client to the server (one request,
    `Connection: close`) and the relay ends when the server has sent its whole answer.
    """
    if upload_limit is None:
        up: Coroutine[Any, Any, None] = pump(client.reader, server.writer)
    else:
        up = copy_exactly(client.reader, server.writer, upload_limit)
    ok = False
    try:
        ok = await _until_done(up, pump(server.reader, client.writer), upload_limit is None)
    finally:
        for conn in (server, client):
            if ok:
                await conn.close()
            else:
                conn.abort()


async def _until_done(
    up: Coroutine[Any, Any, None], down: Coroutine[Any, Any, None], need_up: bool
) -> bool:
    """True when the directions that matter ended cleanly, False as soon as one fails."""
    up_task = asyncio.ensure_future(up)
    down_task = asyncio.ensure_future(down)
    pending = {up_task, down_task}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(task.exception() is not None for task in done):
                return False
            if down_task.done() and (up_task.done() or not need_up):
                return True
        return True
    finally:
        for task in (up_task, down_task):
            task.cancel()
        await asyncio.gather(up_task, down_task, return_exceptions=True)
