"""Where the proxies' Unix sockets go, checked before anything is bound."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

MAX_UNIX_PATH = 107  # sun_path is 108 bytes with the terminating NUL
PROBE_TIMEOUT = 1.0


class SocketPathError(Exception):
    """A socket path that cannot be used; the message says why."""


def socket_paths(directory: Path) -> tuple[Path, Path]:
    """(http.sock, socks.sock) in `directory`, created private if missing, both free to bind."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SocketPathError(
            f"cannot create the proxy socket directory {directory}: {exc.strerror}"
        ) from None
    return _free(directory / "http.sock"), _free(directory / "socks.sock")


def _free(path: Path) -> Path:
    """`path`, short enough for a socket and not a file or another live socket."""
    size = len(os.fsencode(path))
    if size > MAX_UNIX_PATH:
        raise SocketPathError(
            f"the proxy socket path {path} is too long for a Unix socket "
            f"({size} bytes; the limit is {MAX_UNIX_PATH})"
        )
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise SocketPathError(f"cannot use the proxy socket path {path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise SocketPathError(f"cannot use {path} for the proxy socket: it exists and is not one")
    if _in_use(path):
        raise SocketPathError(f"the proxy socket {path} is in use by another process")
    try:
        path.unlink()  # left behind by a session that ended without stopping its proxies
    except OSError as exc:
        raise SocketPathError(
            f"cannot remove the old proxy socket {path}: {exc.strerror}"
        ) from None
    return path


def _in_use(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_TIMEOUT)
        try:
            probe.connect(str(path))
        except TimeoutError:
            return True  # a listener too busy to accept is still alive
        except OSError:
            return False
    return True
