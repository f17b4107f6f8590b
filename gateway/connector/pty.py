"""Run the shared program in a local pseudo-terminal, transparently for the person at the keyboard.

Theory of operation
-------------------
``PtyRunner`` spawns CMD on a fresh PTY (new session, the PTY as controlling terminal, so job
control and Ctrl-C behave as in any terminal) and then pumps, all on the event loop:

    local stdin  ──► PTY master          (raw mode when stdin is a terminal)
    remote input ──► PTY master          (``write_input``: what the gateway forwarded)
    PTY master   ──► local stdout        (a writer task; the PTY is paused while it lags)
                 └─► ``on_output``       (the gateway link's buffer; never blocks)
    SIGWINCH     ──► PTY window size  +  ``on_resize``

Writes to the PTY never block: what the kernel does not take is kept (bounded) and written when
the master is writable. Local stdout is written from a worker thread, because a terminal or pipe
that is slow to read must not stall the event loop (and with it the link).

The program's exit status is passed through; death by signal N becomes 128 + N, as in shells.
The local terminal's mode is restored on every way out (return, exception, SIGTERM, SIGHUP).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import pty
import signal
import struct
import termios
import tty
from collections.abc import Callable, Iterator, Mapping, Sequence

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024  # one os.read from the PTY master (the kernel returns ~4 KiB)
READ_COALESCE_BYTES = 256 * 1024  # 256 KiB read per wake-up at most, so one burst cannot hog the loop
LOCAL_HIGH_WATER_BYTES = 1024 * 1024  # 1 MiB unwritten to local stdout: pause reading the PTY
PTY_INPUT_LIMIT_BYTES = 1024 * 1024  # 1 MiB not yet taken by the PTY: local stdin pauses, remote drops
DEFAULT_SIZE = (80, 24)  # columns, rows when no terminal tells us
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_EOF_BYTE = b"\x04"  # VEOF: stdin that is a pipe or file ended; the program sees end of input
TermAttrs = list[int | list[bytes | int]]  # termios.tcgetattr's value
_WINSIZE = struct.Struct("HHHH")  # rows, cols, xpixel, ypixel (struct winsize, tty_ioctl(4))


def exit_status(returncode: int) -> int:
    """Shell convention: a normal exit passes through; death by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def read_winsize(fd: int) -> tuple[int, int] | None:
    """(cols, rows) of the terminal on ``fd``, or None if it is not a terminal or reports 0x0."""
    try:
        rows, cols, _, _ = _WINSIZE.unpack(fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * _WINSIZE.size))
    except OSError:
        return None
    return (cols, rows) if cols > 0 and rows > 0 else None


def set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))


def _acquire_controlling_tty() -> None:  # pragma: no cover - runs in the forked child
    # setsid() already ran (start_new_session=True); fd 0 is the PTY slave.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LocalTerminal:
    """The owner's terminal: raw mode while sharing, restored on the way out; notices to stderr."""

    def __init__(self, stdin_fd: int | None, stdout_fd: int, stderr_fd: int = 2) -> None:
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self._saved: TermAttrs | None = None

    @property
    def is_tty(self) -> bool:
        return self.stdin_fd is not None and os.isatty(self.stdin_fd)

    @property
    def raw(self) -> bool:
        return self._saved is not None

    @property
    def attrs(self) -> TermAttrs | None:
        """The terminal settings before raw mode (copied onto the PTY so keys mean the same)."""
        if self._saved is not None:
            return self._saved
        if self.stdin_fd is not None and self.is_tty:
            return list(termios.tcgetattr(self.stdin_fd))
        return None

    def size(self) -> tuple[int, int]:
        for fd in (self.stdout_fd, self.stdin_fd, self.stderr_fd):
            if fd is not None and (found := read_winsize(fd)) is not None:
                return found
        return DEFAULT_SIZE

    @contextlib.contextmanager
    def raw_mode(self) -> Iterator[None]:
        """Put stdin in raw mode if it is a terminal; always restore it."""
        if self.stdin_fd is None or not self.is_tty:
            yield
            return
        self._saved = list(termios.tcgetattr(self.stdin_fd))
        try:
            tty.setraw(self.stdin_fd, termios.TCSANOW)
            yield
        finally:
            termios.tcsetattr(self.stdin_fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def notice(self, text: str) -> None:
        """One line for the owner on stderr (CR LF in raw mode, where LF alone does not return)."""
        end = "\r\n" if self.raw else "\n"
        with contextlib.suppress(OSError):
            _write_all(self.stderr_fd, (text.replace("\n", end) + end).encode())


class _LocalWriter:
    """Writes PTY output to local stdout from a worker thread, preserving order."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = bytearray()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.broken = False
        self.on_drained: Callable[[], None] = lambda: None

    @property
    def pending(self) -> int:
        return len(self._buf)

    def write(self, data: bytes) -> None:
        if self.broken:
            return
        self._buf += data
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buf:
                data = bytes(self._buf)
                self._buf.clear()
                try:
                    await asyncio.to_thread(_write_all, self._fd, data)
                except OSError as exc:  # stdout closed (e.g. `| head`): keep the program running
                    log.debug("local stdout closed: %s", exc)
                    self.broken = True
                    self._buf.clear()
                self.on_drained()
            self._idle.set()

    async def flush(self) -> None:
        await self._idle.wait()


class PtyRunner:
    """One program in a PTY, mirrored on the local terminal and reported to callbacks."""

    def __init__(
        self,
        argv: Sequence[str],
        terminal: LocalTerminal,
        *,
        on_output: Callable[[bytes], None] = lambda data: None,
        on_resize: Callable[[int, int], None] = lambda cols, rows: None,
        output_paused: Callable[[], bool] = lambda: False,
        env: Mapping[str, str] | None = None,
        forward_signals: bool = True,
    ) -> None:
        """``output_paused``: asked after each read; True stops reading the program until
        ``resume_output()`` (the gateway link's back-pressure)."""
        if not argv:
            raise ValueError("no command to run")
        self._forward_signals = forward_signals
        self._argv = list(argv)
        self._term = terminal
        self._on_output = on_output
        self._on_resize = on_resize
        self._output_paused = output_paused
        self._env = dict(os.environ if env is None else env)
        self._size = terminal.size()
        self._master = -1
        self._proc: asyncio.subprocess.Process | None = None
        self._to_pty = bytearray()
        self._writer_armed = False
        self._master_open = False
        self._stdin_paused = False
        self._stdin_done = asyncio.Event()
        self._stdin_task: asyncio.Task[None] | None = None
        self._local = _LocalWriter(terminal.stdout_fd)
        self._local.on_drained = self._maybe_resume_master

    @property
    def size(self) -> tuple[int, int]:
        """Current (cols, rows) of the PTY."""
        return self._size

    async def start(self) -> None:
        """Spawn the program. ``FileNotFoundError``/``PermissionError`` if it cannot be run."""
        master, slave = pty.openpty()
        try:
            if (attrs := self._term.attrs) is not None:
                termios.tcsetattr(slave, termios.TCSANOW, attrs)
            set_winsize(slave, *self._size)
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=self._env,
                start_new_session=True,
                preexec_fn=_acquire_controlling_tty,  # the only way to a controlling tty
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # or the master never sees EIO when the program ends
        self._master = master
        os.set_blocking(master, False)

    def write_input(self, data: bytes) -> None:
        """Remote input for the program (never blocks; dropped beyond ``PTY_INPUT_LIMIT_BYTES``)."""
        if len(self._to_pty) + len(data) > PTY_INPUT_LIMIT_BYTES:
            log.warning("remote input dropped: the program is not reading its terminal")
            return
        self._write_pty(data)

    def _write_pty(self, data: bytes) -> None:
        if not self._master_open:
            return
        if not self._to_pty:
            try:
                data = data[os.write(self._master, data) :]
            except BlockingIOError:
                pass
            except OSError:  # the program is gone
                return
        if data:
            self._to_pty += data
            self._arm_writer()

    def _arm_writer(self) -> None:
        if not self._writer_armed and self._master_open:
            asyncio.get_running_loop().add_writer(self._master, self._on_master_writable)
            self._writer_armed = True

    def _on_master_writable(self) -> None:
        try:
            del self._to_pty[: os.write(self._master, self._to_pty)]
        except BlockingIOError:
            return
        except OSError:
            self._to_pty.clear()
        if not self._to_pty:
            asyncio.get_running_loop().remove_writer(self._master)
            self._writer_armed = False
        if self._stdin_paused and len(self._to_pty) < PTY_INPUT_LIMIT_BYTES // 2:
            self._resume_stdin()

    def _read_master(self) -> bool:
        """Read what the PTY holds (up to ``READ_COALESCE_BYTES``); True if anything came."""
        chunks: list[bytes] = []
        total = 0
        eof = False
        while total < READ_COALESCE_BYTES:
            try:
                chunk = os.read(self._master, READ_CHUNK_BYTES)
            except BlockingIOError:
                break
            except OSError:  # EIO: every slave fd is closed (RECIPES §8)
                eof = True
                break
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
            total += len(chunk)
        if chunks:
            data = b"".join(chunks)
            self._local.write(data)
            self._on_output(data)
            if (self._local.pending > LOCAL_HIGH_WATER_BYTES or self._output_paused()) and not eof:
                asyncio.get_running_loop().remove_reader(self._master)
        if eof:
            self._close_master_reader()
        return bool(chunks)

    def _on_master_readable(self) -> None:
        self._read_master()

    def _maybe_resume_master(self) -> None:
        if self._master_open and self._local.pending <= LOCAL_HIGH_WATER_BYTES and not self._output_paused():
            asyncio.get_running_loop().add_reader(self._master, self._on_master_readable)

    def resume_output(self) -> None:
        """The consumer has room again: read the program's output (unless the local side is full)."""
        self._maybe_resume_master()

    def _close_master_reader(self) -> None:
        if self._master_open:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._master)
            if self._writer_armed:
                loop.remove_writer(self._master)
                self._writer_armed = False
            self._master_open = False

    def _on_stdin_readable(self) -> None:
        assert self._term.stdin_fd is not None
        try:
            data = os.read(self._term.stdin_fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._stop_stdin(send_eof=not self._term.raw)
            return
        self._write_pty(data)
        if len(self._to_pty) > PTY_INPUT_LIMIT_BYTES:
            self._stdin_paused = True
            asyncio.get_running_loop().remove_reader(self._term.stdin_fd)

    def _resume_stdin(self) -> None:
        self._stdin_paused = False
        if self._term.stdin_fd is not None and not self._stdin_done.is_set():
            asyncio.get_running_loop().add_reader(self._term.stdin_fd, self._on_stdin_readable)

    def _stop_stdin(self, *, send_eof: bool) -> None:
        if self._stdin_done.is_set() or self._term.stdin_fd is None:
            return
        self._stdin_done.set()
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._term.stdin_fd)
        if send_eof:
            self._write_pty(_EOF_BYTE)

    async def _read_unpollable_stdin(self, fd: int) -> None:
        """A regular file or /dev/null as stdin (epoll refuses them): read it in a thread."""
        while not self._stdin_done.is_set():
            data = await asyncio.to_thread(os.read, fd, READ_CHUNK_BYTES)
            if not data:
                break
            self._write_pty(data)
        self._stop_stdin(send_eof=True)

    def _on_winch(self) -> None:
        size = self._term.size()
        if size != self._size and self._master_open:
            self._size = size
            set_winsize(self._master, *size)  # the kernel sends SIGWINCH to the program
            self._on_resize(*size)

    def _forward_signal(self, signum: int) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signum)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed: list[int] = []
        if not self._forward_signals:  # embedded (the demo): the host process owns the signals
            return installed
        wanted: list[tuple[int, Callable[[], None]]] = [(signal.SIGWINCH, self._on_winch)]
        wanted += [(s, functools.partial(self._forward_signal, s)) for s in FORWARDED_SIGNALS]
        for signum, handler in wanted:
            try:
                loop.add_signal_handler(signum, handler)
            except (ValueError, RuntimeError):  # not the main thread: no signal handling
                continue
            installed.append(signum)
        return installed

    def _wire_stdin(self, loop: asyncio.AbstractEventLoop, tg: asyncio.TaskGroup) -> None:
        fd = self._term.stdin_fd
        if fd is None:
            return
        try:
            loop.add_reader(fd, self._on_stdin_readable)
        except PermissionError:  # regular files and /dev/null cannot be polled
            self._stdin_task = tg.create_task(self._read_unpollable_stdin(fd))

    async def wait(self) -> int:
        """Pump until the program exits and its output is drained; return its exit status."""
        assert self._proc is not None, "start() first"
        loop = asyncio.get_running_loop()
        self._master_open = True
        loop.add_reader(self._master, self._on_master_readable)
        installed = self._install_signals(loop)
        try:
            async with asyncio.TaskGroup() as tg:
                local = tg.create_task(self._local.run())
                self._wire_stdin(loop, tg)
                returncode = await self._proc.wait()
                self._drain_master()
                self._stop_stdin(send_eof=False)
                if self._stdin_task is not None:
                    self._stdin_task.cancel()
                await self._local.flush()
                local.cancel()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            self._stop_stdin(send_eof=False)
            self._close_master_reader()
            os.close(self._master)
        return exit_status(returncode)

    def _drain_master(self) -> None:
        """After the exit, take what the program wrote last (the PTY holds it until read)."""
        while self._master_open and self._read_master():
            pass
        self._close_master_reader()

    async def run(self) -> int:
        """Start, mirror and wait, with the local terminal in raw mode meanwhile."""
        with self._term.raw_mode():
            await self.start()
            return await self.wait()


def default_terminal() -> LocalTerminal:
    """The process's own stdin, stdout and stderr (file descriptors 0, 1, 2)."""
    return LocalTerminal(0, 1, 2)
