"""Runs inside the sandbox before the command: limits, and the bridge to the egress proxies.

Started as `python -I -S stage2.py [--bridge PORT=SOCKET]... [--limit NAME=VALUE]... -- ARGV`.
It starts for every command, so it imports only modules built into the interpreter (`socket`,
`os` and `threading` would each cost milliseconds more). With bridges, it listens on
127.0.0.1:PORT in the sandbox's own network namespace and forwards each connection to the
proxy's Unix socket (the namespace has no other way out); it runs the command as its child and
ends the way the command ended. Without bridges it sets the limits and execs the command.
"""

import _signal  # type: ignore[import-not-found]  # no stubs; `signal` costs an import of enum
import _socket
import _thread
import posix
import resource
import sys

CHUNK = 65536
LIMITS = {
    "cpu": resource.RLIMIT_CPU,
    "as": resource.RLIMIT_AS,
    "nproc": resource.RLIMIT_NPROC,
    "nofile": resource.RLIMIT_NOFILE,
    "core": resource.RLIMIT_CORE,
}


def main(argv: list[str]) -> None:
    if "--" not in argv:
        _fail("usage: [--bridge PORT=SOCKET] [--limit NAME=VALUE] -- ARGV", 2)
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    if not command or len(options) % 2:
        _fail("usage: [--bridge PORT=SOCKET] [--limit NAME=VALUE] -- ARGV", 2)
    pairs = list(zip(options[::2], options[1::2], strict=True))
    bridges = [value.split("=", 1) for key, value in pairs if key == "--bridge"]
    limits = [value.split("=", 1) for key, value in pairs if key == "--limit"]
    listeners = [_listen(int(port)) for port, _ in bridges]
    if not listeners:
        _exec(command, limits)
    pid = posix.fork()
    if pid == 0:
        for listener in listeners:
            listener.close()
        _exec(command, limits)
    for listener, (_, path) in zip(listeners, bridges, strict=True):
        _thread.start_new_thread(_accept, (listener, path))
    _end_like(pid)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"koda sandbox: {message}\n")
    sys.stderr.flush()
    posix._exit(code)


def _listen(port: int) -> _socket.socket:
    listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    return listener


def _exec(command: list[str], limits: list[list[str]]) -> None:
    try:
        for name, value in limits:
            number = int(value)
            # CPU: SIGXCPU at the soft limit, SIGKILL a little later if it is ignored.
            hard = number + 5 if name == "cpu" else number
            try:
                resource.setrlimit(LIMITS[name], (number, hard))
            except (OSError, ValueError):
                if sys.platform == "linux":
                    raise
                # macOS refuses some limits (RLIMIT_AS above the current use); the profile
                # still holds, the limit is simply not there.
        posix.execv(command[0], command)
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"cannot run {command[0]}: {exc}", 127)


def _accept(listener: _socket.socket, path: str) -> None:
    while True:
        fd, _ = listener._accept()  # type: ignore[attr-defined]
        client = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, 0, fd)
        _thread.start_new_thread(_connect, (client, path))


def _connect(client: _socket.socket, path: str) -> None:
    upstream = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    done = _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(_pump, (upstream, client, done))
    _pump(client, upstream, None)
    done.acquire()
    client.close()
    upstream.close()


def _pump(source: _socket.socket, target: _socket.socket, done: _thread.LockType | None) -> None:
    try:
        while data := source.recv(CHUNK):
            target.sendall(data)
        target.shutdown(_socket.SHUT_WR)
    except OSError:
        # One side is gone: end both directions, so the other pump stops too.
        for end in (source, target):
            try:  # noqa: SIM105 - contextlib is not imported here
                end.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
    if done is not None:
        done.release()


def _end_like(pid: int) -> None:
    while True:
        try:
            _, status = posix.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if posix.WIFSIGNALED(status):
        # Die the same way, so whoever waits sees the signal, not an exit code.
        sig = posix.WTERMSIG(status)
        if sig not in (_signal.SIGKILL, _signal.SIGSTOP):  # those two cannot be reset
            _signal.signal(sig, _signal.SIG_DFL)
        posix.kill(posix.getpid(), sig)
    posix._exit(posix.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])
