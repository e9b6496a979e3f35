"""`python -m imggen` without paying for Python's start and imggen's imports at every CLI test.

A server process (one per pytest process, started at its first use) imports what `python -m imggen`
always imports first (imggen.commands, nothing more: every lazy import stays lazy), then forks a
child for each run. The child is what a fresh `python -m imggen ARGS` is: its own process with the
test's environment, working directory, umask, sys.path[0] and argv, stdin/stdout/stderr on pipes, run by
runpy as `-m` runs it, ending through the interpreter's own shutdown (atexit, threads, exit code, a
traceback for an uncaught exception). What the interpreter reads once at its start (PYTHON*, LANG,
LC_*, TZ, TYPER_*) can't change in a fork: an environment that changes one of them gets a real
`python -m imggen` instead (`run` returns None), as does any platform without fork.

Protocol on a unix socket: the client sends JSON {argv, env, cwd} with three fds (stdin, stdout,
stderr). A helper child forks the runner, answers {"pid": N}, waits for it, then answers
{"returncode": N} (negative: killed by that signal) and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any

STARTUP_PREFIXES = ("PYTHON", "LC_", "LANG", "TYPER_", "_TYPER", "TZ")


def _startup_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES)}


# ---------------------------------------------------------------- the server (its own process)


def _serve(path: str) -> dict[str, Any] | None:
    """Accept runs until stdin (the pytest process) closes; return a run's request in its runner child."""
    import selectors

    import imggen.commands  # noqa: F401  (what `python -m imggen` imports before anything else)

    _assert_nothing_cached()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    import gc

    gc.freeze()  # the preloaded modules stay shared with every child (no copy-on-write from the collector)
    while True:
        _reap()
        events = selector.select(timeout=5)
        if any(key.fileobj is sys.stdin for key, _ in events) and not os.read(0, 4096):
            return None  # the pytest process is gone
        if not any(key.fileobj is listener for key, _ in events):
            continue
        conn, _ = listener.accept()
        try:
            data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            request = json.loads(data)
        except Exception:
            conn.close()
            continue
        if os.fork() == 0:  # the helper: forks the runner, reports its pid and then its exit
            selector.close()
            listener.close()
            pid = os.fork()
            if pid == 0:
                conn.close()
                request["fds"] = fds
                return request  # the runner: back to the top level, which runs imggen
            for fd in fds:
                os.close(fd)
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            try:
                conn.sendall(json.dumps({"returncode": code}).encode() + b"\n")
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        conn.close()


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


# Filled at import from the providers' declarations alone (code, not the environment or any file).
STATIC_CACHES = {"imggen.secrets._derived"}


def _assert_nothing_cached() -> None:
    """Importing must not have computed anything from the server's environment or files (the catalog, the
    overlay, settings): their caches stay empty, or every child would share them."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("imggen"):
            continue
        for value in vars(module).values():
            info = getattr(value, "cache_info", None)
            if callable(info) and info().currsize and f"{name}.{value.__name__}" not in STATIC_CACHES:
                raise RuntimeError(f"{name}.{value.__name__} is cached at import: a fork would share it")


def _become(request: dict[str, Any]) -> None:
    """In the runner child: the test's stdio, environment, directory and argv, as `python -m imggen`."""
    stdin, stdout, stderr = request["fds"]
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["-m", *request["argv"]]
    sys.path[0] = os.getcwd()  # `-m` puts the working directory first


def main() -> None:
    request = _serve(sys.argv[1])
    if request is None:
        return
    _become(request)
    import runpy

    runpy._run_module_as_main("imggen")  # type: ignore[attr-defined]  # exactly what `python -m imggen` calls


# ---------------------------------------------------------------- the client (in pytest)


class _Server:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="imggen-fork-")
        self.path = os.path.join(self.dir, "s")
        self.env = dict(os.environ)
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, "forkserver.py"), self.path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, cwd=self.dir,
        )  # fmt: skip
        assert self.proc.stdout is not None
        if self.proc.stdout.readline() != b"ready\n":
            raise RuntimeError("the fork server did not start: " + self.proc.stderr.read().decode(errors="replace"))  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


_server: _Server | None = None
_lock = threading.Lock()
DISABLED = not hasattr(os, "fork") or os.environ.get("IMGGEN_TESTS_FORKSERVER", "1") == "0"


def _get() -> _Server | None:
    global _server
    with _lock:
        if _server is None or _server.proc.poll() is not None:
            _server = _Server()
            import atexit

            atexit.register(_server.stop)
        return _server


def _umask() -> int:
    """This process's umask, which a child inherits (read without setting it: other threads may create files)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def run(
    argv: list[str], env: dict[str, str], cwd: str, input: bytes | None, timeout: float
) -> tuple[int, bytes, bytes] | None:
    """`python -m imggen *argv` forked from the server: (returncode, stdout, stderr), or None to run it for real."""
    if DISABLED:
        return None
    server = _get()
    if server is None or _startup_env(env) != _startup_env(server.env):
        return None
    # as subprocess.run(input=…, capture_output=True) or stdin=DEVNULL: pipes, /dev/null
    stdin_r, stdin_w = os.pipe() if input is not None else (os.open(os.devnull, os.O_RDONLY), -1)
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(server.path)
        request = {"argv": argv, "env": env, "cwd": cwd, "umask": _umask()}
        socket.send_fds(conn, [json.dumps(request).encode()], [stdin_r, out_w, err_w])
    finally:
        for fd in (stdin_r, out_w, err_w):
            os.close(fd)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}

    def drain(fd: int) -> None:
        with open(fd, "rb", closefd=True) as pipe:
            while block := pipe.read1(65536):
                chunks[fd].append(block)

    readers = [threading.Thread(target=drain, args=(fd,), daemon=True) for fd in (out_r, err_r)]
    for reader in readers:
        reader.start()
    if input is not None:

        def feed() -> None:
            try:
                with open(stdin_w, "wb", closefd=True) as pipe:
                    pipe.write(input)
            except BrokenPipeError:
                pass

        threading.Thread(target=feed, daemon=True).start()
    answers = conn.makefile("rb")
    conn.settimeout(timeout)
    pid = None
    try:
        pid = json.loads(answers.readline())["pid"]
        line = answers.readline()
        if not line:
            raise RuntimeError("the fork server's helper died")
        code = int(json.loads(line)["returncode"])
    except TimeoutError:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        raise subprocess.TimeoutExpired(["python", "-m", "imggen", *argv], timeout) from None
    finally:
        answers.close()
        conn.close()
    for reader in readers:
        reader.join(timeout)
    return code, b"".join(chunks[out_r]), b"".join(chunks[err_r])


if __name__ == "__main__":
    main()
