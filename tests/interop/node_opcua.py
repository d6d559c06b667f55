"""A node-opcua server (tests/interop/node_opcua_server/server.js) as a child process, for interop tests.

node-opcua is a second, independent OPC UA stack: what Stacklight's asyncua-based source does
against it is what it does against a real device, not against its own library's server.
The process lives on a free loopback port with its PKI under a directory we own; `kill()`
is a crash (SIGKILL), `start()` brings it back on the same port and with the same certificate.
It reads commands on stdin and exits when stdin closes, so it never outlives the test run.
"""
from __future__ import annotations

import asyncio
import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.embedded_servers import free_port

SERVER_DIR = Path(__file__).resolve().parent / "node_opcua_server"
NAMESPACE = "urn:stacklight:interop"
USERNAME, PASSWORD = "operator", "s3cret"
READY_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0


def node_id(name: str) -> str:
    """The portable node id of an Interop variable, e.g. node_id("Counter")."""
    return f"nsu={NAMESPACE};s=Interop.{name}"


def unavailable_reason() -> str | None:
    """Why the node-opcua server cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return ("node is not on PATH: install Node.js (with npm) and run `make test`, "
                f"which runs `npm ci` in {SERVER_DIR}")
    if not (SERVER_DIR / "node_modules" / "node-opcua").is_dir():
        return (f"node-opcua is not installed in {SERVER_DIR}: run `make test`, "
                f"or `npm ci` in that directory")
    return None


def serve_or_skip(pki_dir: Path) -> Iterator[NodeOpcUaServer]:
    """For fixtures (`yield from serve_or_skip(dir)`): a running server, stopped afterwards; skip where none can run."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = NodeOpcUaServer(pki_dir).start()
    try:
        yield server
    finally:
        server.stop()


class NodeOpcUaServer:
    """One node-opcua server process; start(), kill(), start() again on the same port, stop()."""

    def __init__(self, pki_dir: Path, username: str = USERNAME, password: str = PASSWORD) -> None:
        self.pki_dir = Path(pki_dir)
        self.username, self.password = username, password
        self.port = free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/interop"
        self.certificate_der_path: Path | None = None
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._stderr_path = self.pki_dir / "server-stderr.log"
        self.chatter: list[str] = []  # what node-opcua logged on stdout
        self._command_lock = threading.Lock()  # one command, one answer: never interleaved

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> NodeOpcUaServer:
        """Start the process and wait until it listens (blocking: from async code, use asyncio.to_thread)."""
        if self.running:
            raise RuntimeError("the node-opcua server is already running")
        self.pki_dir.mkdir(parents=True, exist_ok=True)
        self._lines = queue.Queue()
        with open(self._stderr_path, "ab") as stderr:
            self._process = subprocess.Popen(
                ["node", "server.js", "--port", str(self.port), "--pki", str(self.pki_dir),
                 "--username", self.username, "--password", self.password],
                cwd=SERVER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read_lines, args=(self._process, self._lines), daemon=True,
                                         name=f"node-opcua-{self.port}-stdout")
        self._reader.start()
        try:
            first = self._next_line(READY_TIMEOUT_S)
        except Exception:
            self.kill()
            raise
        if first is None or not first.startswith("READY "):
            self.kill()
            raise RuntimeError(f"the node-opcua server did not start (said {first!r}); stderr:\n{self.stderr()}")
        self.certificate_der_path = Path(first.removeprefix("READY ").strip())
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash: the server closes no session; the kernel just drops its sockets."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        self._release(process)

    def stop(self) -> None:
        """Close stdin (the server shuts down and exits), wait, and kill it if it does not."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._release(process)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stderr(self) -> str:
        """What the server logged (stderr, then its log lines on stdout): for failure messages."""
        try:
            text = self._stderr_path.read_text(errors="replace")
        except OSError:
            text = ""
        return "\n".join([text, *self.chatter[-20:]])

    def _release(self, process: subprocess.Popen) -> None:
        """After the process ended: let the reader see the end of its output, then close the pipes."""
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT_S)
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._process, self._reader = None, None

    # --- commands -------------------------------------------------------------------------------

    async def set(self, name: str, value, status: str | None = None, no_source_time: bool = False) -> None:
        """Give the variable Interop.<name> a new value (status: a node-opcua StatusCodes name)."""
        command: dict[str, object] = {"set": name, "value": value}
        if status is not None:
            command["status"] = status
        if no_source_time:
            command["noSourceTime"] = True
        answer = await asyncio.to_thread(self._command, json.dumps(command))
        if answer != "OK":
            raise RuntimeError(f"node-opcua refused {command}: {answer!r}; stderr:\n{self.stderr()}")

    def _command(self, line: str) -> str | None:
        with self._command_lock:
            process = self._process
            if process is None or process.poll() is not None:
                raise RuntimeError("the node-opcua server is not running")
            process.stdin.write(line + "\n")
            process.stdin.flush()
            return self._next_line(ANSWER_TIMEOUT_S)

    def _next_line(self, timeout_s: float) -> str | None:
        """The next stdout line; None when the process ended; TimeoutError with its stderr after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer from the node-opcua server within {timeout_s:g} s; "
                                   f"stderr:\n{self.stderr()}")
            try:
                return self._lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue

    def _read_lines(self, process: subprocess.Popen, lines: queue.Queue[str | None]) -> None:
        """Protocol lines to `lines`; node-opcua's own log lines (it warns on stdout too) to `chatter`."""
        try:
            for line in process.stdout:
                line = line.rstrip("\n")
                if line == "OK" or line.startswith(("READY ", "ERROR ")):
                    lines.put(line)
                else:
                    self.chatter.append(line)
        except (OSError, ValueError):
            pass
        lines.put(None)
