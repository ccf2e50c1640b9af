"""Child processes of an execution environment: start, watch, collect output, stop.

Each process gets its own session (process group) because a wrapper script may start the
runtime as a child instead of exec'ing it; stopping the group stops whatever it started, as
Lambda's reset of a sandbox does. stdout and stderr are merged per process and kept in one
ordered log, because the tests read what the layer wrote without caring which stream it used.
"""
from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import threading
import termios
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["LogBuffer", "ManagedProcess", "socket_owner"]


class LogBuffer:
    """Everything the environment's processes wrote, in arrival order, tagged by source.

    With a `line_sink`, each complete line a source writes is also handed to
    `line_sink(source, line)` (without its newline), as Lambda hands every line of a
    function's processes to CloudWatch Logs; `end(source)` hands on a last line the process
    left unterminated. A sink that raises loses that line only.
    """

    def __init__(self, line_sink: Optional[Callable[[str, str], None]] = None) -> None:
        self._chunks: List[Tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._drains: List[Callable[[], bool]] = []
        self._line_sink = line_sink
        self._partial: Dict[str, bytes] = {}

    def append(self, source: str, data: bytes) -> None:
        with self._lock:
            self._chunks.append((source, data))
            if self._line_sink is None:
                return
            pending = self._partial.pop(source, b"") + data
            *lines, rest = pending.split(b"\n")
            if rest:
                self._partial[source] = rest
        self._hand_on(source, lines)

    def end(self, source: str) -> None:
        """The source's pipe is closed: hand on what it left without a newline."""
        with self._lock:
            rest = self._partial.pop(source, b"")
        if rest:
            self._hand_on(source, [rest])

    def _hand_on(self, source: str, lines: List[bytes]) -> None:
        for line in lines:
            try:
                self._line_sink(source, line.decode("utf-8", errors="replace").rstrip("\r"))  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - a log consumer must never break the function
                pass

    def add_drain(self, drain: Callable[[], bool]) -> None:
        """Register a pipe to empty before each read; it returns False once its pipe is closed."""
        with self._lock:
            self._drains.append(drain)

    def text(self, source: Optional[str] = None) -> str:
        """The output so far, including whatever sits unread in the pipes at this moment."""
        with self._lock:
            drains = list(self._drains)
        finished = [drain for drain in drains if drain() is False]
        if finished:
            with self._lock:
                self._drains = [d for d in self._drains if d not in finished]
        with self._lock:
            chunks = [data for name, data in self._chunks if source is None or name == source]
        return b"".join(chunks).decode("utf-8", errors="replace")


class ManagedProcess:
    """One runtime or extension process; ``on_exit(code)`` is called once, when it ends."""

    def __init__(self, role: str, name: str, command: Sequence[str], env: Dict[str, str],
                 cwd: str, logs: LogBuffer, on_exit: Callable[[int], None]):
        self.role, self.name = role, name
        self.command = list(command)
        self._popen = subprocess.Popen(
            self.command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        self.pid = self._popen.pid
        self._logs = logs
        self._on_exit = on_exit
        self._fd = self._popen.stdout.fileno()
        os.set_blocking(self._fd, False)  # never block while holding _pipe_lock
        self._pipe_lock = threading.Lock()
        self._eof = False
        logs.add_drain(self.drain)
        self._reader = threading.Thread(target=self._read_output, name=f"log-{name}", daemon=True)
        self._reader.start()
        threading.Thread(target=self._watch, name=f"wait-{name}", daemon=True).start()

    @property
    def returncode(self) -> Optional[int]:
        return self._popen.poll()

    def _read_output(self) -> None:
        # poll() outside the lock, read under it (non-blocking): drain() (called by logs())
        # can then empty the pipe without racing this thread, so a line written before an
        # invocation ended is always in env.logs() afterwards, and chunks keep their order.
        stream = self._popen.stdout
        fd = stream.fileno()
        poller = select.poll()  # not select(): it fails for descriptors above 1023
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while True:
                poller.poll()
                with self._pipe_lock:
                    if self._eof:
                        return
                    try:
                        data = os.read(fd, 65536)  # non-blocking: drain() may have emptied it
                    except BlockingIOError:
                        continue
                    if not data:
                        self._eof = True
                        return
                    self._logs.append(self.name, data)
        except (OSError, ValueError):
            return
        finally:
            with self._pipe_lock:
                self._eof = True
                stream.close()
            self._logs.end(self.name)

    def drain(self) -> bool:
        """Move whatever the pipe holds right now into the log; False once the pipe is closed."""
        with self._pipe_lock:
            if self._eof:
                return False
            try:
                pending = struct.unpack("i", fcntl.ioctl(self._fd, termios.FIONREAD, b"\0" * 4))[0]
                if pending > 0:
                    self._logs.append(self.name, os.read(self._fd, pending))
            except OSError:
                pass
            return True

    def _watch(self) -> None:
        code = self._popen.wait()
        # Let the reader drain what the process wrote just before exiting, so a crash message
        # is in the logs by the time the environment reports the crash.
        self._reader.join(timeout=0.5)
        self._on_exit(code)

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace_s: float = 0.0) -> None:
        """SIGTERM, up to ``grace_s`` to exit, then SIGKILL the whole process group."""
        if grace_s > 0 and self._popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while self._popen.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        self.signal_group(signal.SIGKILL)
        try:
            self._popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(timeout=0.5)

    def wait(self, timeout: float) -> bool:
        try:
            self._popen.wait(timeout=max(timeout, 0))
            return True
        except subprocess.TimeoutExpired:
            return False


def socket_owner(address: str, groups: Dict[int, str], peer: Optional[str] = None) -> Optional[str]:
    """The name of the process group (``{pgid: name}``) holding the TCP socket bound to
    ``address`` ("127.0.0.1:PORT") and connected to ``peer``, found through /proc; None if
    there is none.

    Used to tell whether a response came from the runtime itself or from a proxy in an
    extension, without asking the handler. Reads /proc only when called, never per request.
    The peer matters: a local port can also appear in a closed (TIME_WAIT) connection to
    another server, and such an entry belongs to nobody.
    """
    try:
        local, remote = _proc_address(address), _proc_address(peer) if peer else None
        with open("/proc/net/tcp") as table:
            inode = next((fields[9] for fields in (line.split() for line in table)
                          if len(fields) > 9 and fields[1] == local and fields[9] != "0"
                          and (remote is None or fields[2] == remote)), None)
    except (OSError, ValueError):
        return None
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid_text in os.listdir("/proc"):
        if not pid_text.isdigit():
            continue
        try:
            group = os.getpgid(int(pid_text))
            if group not in groups:
                continue
            fd_dir = f"/proc/{pid_text}/fd"
            if any(os.readlink(os.path.join(fd_dir, fd)) == target for fd in os.listdir(fd_dir)):
                return groups[group]
        except OSError:
            continue
    return None


def _proc_address(address: str) -> str:
    """An IPv4 "host:port" as /proc/net/tcp writes it: 127.0.0.1:8080 is 0100007F:1F90."""
    host, _, port = address.rpartition(":")
    return "%s:%04X" % ("".join(f"{int(part):02X}" for part in reversed(host.split("."))), int(port))
