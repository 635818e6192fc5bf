"""The fuzz tests' sandbox: cases run in a worker subprocess, so a crash fails a case, not pytest.

A :class:`Sandbox` keeps one worker process (this file run as a script) and sends it one case
at a time: a ``"module:function"`` target and a picklable payload. The worker calls the target
and sends back what it returned, or the exception it raised (class, base classes, message).
One case is in flight at a time, so when the worker dies the case that killed it is known
exactly; the sandbox then runs that case once more in a fresh worker (to say whether it
crashes on its own, not only after the cases before it) and starts a new worker for the rest.
A case that takes longer than its timeout is a hang: the worker is killed and replaced.

The counts of every fuzz test are kept in :data:`COUNTS` and printed at the end of the session
(``tests/conftest.py``), so a closing note can quote them; ``$SNNFAST_FUZZ_REPORT`` names a
JSON file to write them to as well.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

COUNTS: dict[str, Counter] = {}
"""Per fuzz suite, the counts of what it ran (``calls``, ``cases``, ``files``, outcomes)."""

NAMED = ("ModelFormatError", "MemoryLimitError")


def in_ci() -> bool:
    """Whether the ``ci`` hypothesis profile is active (``.ci/run`` sets it): the full counts."""
    return os.environ.get("SNNFAST_HYPOTHESIS_PROFILE") == "ci"


def count(suite: str, **amounts: int) -> None:
    """Add ``amounts`` to the counts of ``suite``."""
    COUNTS.setdefault(suite, Counter()).update(amounts)


@dataclass
class Outcome:
    """What happened to one case.

    Attributes:
        status: ``"ok"`` (the target returned), ``"raised"`` (it raised), ``"crashed"`` (the
            worker died: ``signal`` says how) or ``"hung"`` (past the timeout).
        value: what the target returned.
        error: the exception's class name; ``bases``: the names of its classes (MRO);
            ``message``: its text; ``trace``: its traceback.
        returncode: the dead worker's exit status (negative: the signal that killed it).
        alone: for a crash, whether the case crashed again alone in a fresh worker.
        stderr: the end of the worker's stderr, for crashes and hangs.
    """

    status: str
    value: Any = None
    error: str = ""
    bases: tuple[str, ...] = ()
    message: str = ""
    trace: str = ""
    returncode: int = 0
    alone: bool | None = None
    stderr: str = ""

    def named(self, *names: str) -> bool:
        """Whether it raised an exception that is one of ``names`` (or a subclass)."""
        return self.status == "raised" and any(n in self.bases for n in names)

    def snnfast_error(self) -> bool:
        """Whether it raised a named subclass of ``SnnfastError`` (not the base class itself)."""
        return (
            self.status == "raised"
            and "SnnfastError" in self.bases
            and self.error != "SnnfastError"
        )

    def describe(self) -> str:
        if self.status == "raised":
            return f"{self.error}: {self.message[:300]}"
        if self.status == "crashed":
            rc = self.returncode
            how = f"signal {-rc}" if rc < 0 else f"exit {rc}"
            again = {True: "crashes alone too", False: "not alone", None: ""}[self.alone]
            return f"crashed ({how}; {again})\n{self.stderr[-1500:]}"
        if self.status == "hung":
            return f"hung\n{self.stderr[-1500:]}"
        return f"ok: {str(self.value)[:300]}"


@dataclass
class _Worker:
    proc: subprocess.Popen
    stderr: Any
    started: float = field(default_factory=time.monotonic)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [HERE, *[p for p in sys.path if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(extra or {})
    return env


class Sandbox:
    """One worker subprocess that runs cases (see the module docstring).

    Args:
        env: extra environment of the worker (``SNNFAST_MEMORY_LIMIT`` ...).
        timeout: seconds one case may take.
        address_space: a ``RLIMIT_AS`` in bytes for the worker, or ``None``.
    """

    def __init__(
        self,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
        address_space: int | None = None,
    ) -> None:
        self.env = _env(env)
        self.timeout = timeout
        self.address_space = address_space
        self._worker: _Worker | None = None
        self.restarts = 0

    # -- the worker's life ------------------------------------------------------------------

    def _start(self) -> _Worker:
        err = tempfile.TemporaryFile()
        argv = [sys.executable, "-u", os.path.join(HERE, "helpers_fuzz.py")]
        if self.address_space:
            argv.append(str(self.address_space))
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=self.env,
            start_new_session=True,
        )
        return _Worker(proc, err)

    def _stop(self, w: _Worker, kill: bool) -> int:
        if kill and w.proc.poll() is None:
            try:
                os.killpg(w.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            if w.proc.stdin:
                w.proc.stdin.close()
        except OSError:
            pass
        try:
            code = w.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(w.proc.pid, signal.SIGKILL)
            code = w.proc.wait()
        return code

    def _tail(self, w: _Worker) -> str:
        try:
            w.stderr.seek(0, os.SEEK_END)
            size = w.stderr.tell()
            w.stderr.seek(max(0, size - 4000))
            return w.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        if self._worker is not None:
            self._stop(self._worker, kill=False)
            self._worker.stderr.close()
            self._worker = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one case ---------------------------------------------------------------------------

    def _exchange(self, w: _Worker, frame: bytes, timeout: float) -> bytes | None | str:
        """Send a frame and read the answer: bytes, ``None`` (the worker died) or ``"hung"``."""
        assert w.proc.stdin is not None and w.proc.stdout is not None
        try:
            w.proc.stdin.write(struct.pack("<Q", len(frame)) + frame)
            w.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        fd = w.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        need = 8
        length = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "hung"
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, max(need - len(buf), 1 << 16))
            if not chunk:
                return None
            buf += chunk
            if length is None and len(buf) >= 8:
                (length,) = struct.unpack("<Q", buf[:8])
                buf = buf[8:]
                need = length
            if length is not None and len(buf) >= length:
                return buf[:length]

    def _once(self, target: str, payload: Any, timeout: float) -> Outcome:
        if self._worker is None:
            self._worker = self._start()
        w = self._worker
        answer = self._exchange(w, pickle.dumps((target, payload)), timeout)
        if isinstance(answer, bytes):
            status, value = pickle.loads(answer)
            if status == "ok":
                return Outcome("ok", value=value)
            return Outcome("raised", **value)
        hung = answer == "hung"
        code = self._stop(w, kill=True)
        tail = self._tail(w)
        w.stderr.close()
        self._worker = None
        self.restarts += 1
        if hung:
            return Outcome("hung", stderr=tail)
        return Outcome("crashed", returncode=code, stderr=tail)

    def run(self, target: str, payload: Any, timeout: float | None = None) -> Outcome:
        """Run one case; a crash is retried alone in a fresh worker to say if it reproduces."""
        t = self.timeout if timeout is None else timeout
        out = self._once(target, payload, t)
        if out.status == "crashed":
            again = self._once(target, payload, t)
            out.alone = again.status == "crashed"
        return out


# -- the worker ---------------------------------------------------------------------------------


def _read_exact(fh: Any, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = fh.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _serve() -> None:
    import importlib
    import resource

    if len(sys.argv) > 1:
        limit = int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the targets print goes to stderr, not into the frames
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer
    while True:
        head = _read_exact(stdin, 8)
        if head is None:
            return
        (length,) = struct.unpack("<Q", head)
        body = _read_exact(stdin, length)
        if body is None:
            return
        target, payload = pickle.loads(body)
        module, name = target.split(":")
        try:
            value = getattr(importlib.import_module(module), name)(payload)
            answer = ("ok", value)
        except BaseException as exc:  # noqa: BLE001 (every outcome is reported)
            answer = (
                "raised",
                {
                    "error": type(exc).__name__,
                    "bases": tuple(c.__name__ for c in type(exc).__mro__),
                    "message": str(exc),
                    "trace": traceback.format_exc()[-3000:],
                },
            )
        try:
            frame = pickle.dumps(answer)
        except Exception as exc:  # noqa: BLE001
            frame = pickle.dumps(("raised", {"error": "PicklingError", "message": str(exc)}))
        out.write(struct.pack("<Q", len(frame)) + frame)
        out.flush()


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    _serve()
