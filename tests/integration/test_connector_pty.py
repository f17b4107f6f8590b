"""The connector's PTY runner with real programs: output, exit status, input, terminal facts."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import pytest

from gateway.connector.pty import LocalTerminal, PtyRunner, exit_status

TIMEOUT_S = 10.0


class Pipes:
    """A local "terminal" made of pipes: what the runner prints is read back from ``out_r``."""

    def __init__(self) -> None:
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()
        self.drained = bytearray()
        self._draining = False

    def terminal(self, *, stdin: bool = False) -> LocalTerminal:
        return LocalTerminal(self.in_r if stdin else None, self.out_w, self.err_w)

    def drain_while_running(self) -> None:
        """Read the local output as a terminal would, so big outputs do not fill the pipe."""
        os.set_blocking(self.out_r, False)
        asyncio.get_running_loop().add_reader(self.out_r, self._on_out)
        self._draining = True

    def _on_out(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.drained += os.read(self.out_r, 65536)

    def local_output(self) -> bytes:
        if self._draining:
            asyncio.get_running_loop().remove_reader(self.out_r)
            os.set_blocking(self.out_r, True)
        os.close(self.out_w)
        chunks = [bytes(self.drained)]
        while chunk := os.read(self.out_r, 65536):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for fd in (self.in_r, self.in_w, self.out_r, self.out_w, self.err_r, self.err_w):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pipes() -> Iterator[Pipes]:
    p = Pipes()
    yield p
    p.close()


async def _run(argv: list[str], term: LocalTerminal, sink: list[bytes] | None = None) -> int:
    runner = PtyRunner(argv, term, on_output=(sink.append if sink is not None else lambda d: None))
    return await asyncio.wait_for(runner.run(), TIMEOUT_S)


async def test_exit_status_and_output_pass_through(pipes: Pipes) -> None:
    seen: list[bytes] = []
    code = await _run(["bash", "-c", "echo hi; exit 7"], pipes.terminal(), seen)
    assert code == 7
    assert pipes.local_output() == b"hi\r\n"  # the local screen gets the PTY's bytes unchanged
    assert b"".join(seen) == b"hi\r\n"  # and so does the gateway side


async def test_death_by_signal_becomes_128_plus_n(pipes: Pipes) -> None:
    assert await _run(["bash", "-c", "kill -TERM $$"], pipes.terminal()) == 128 + 15


def test_exit_status_convention() -> None:
    assert [exit_status(rc) for rc in (0, 7, -2, -9)] == [0, 7, 130, 137]


async def test_program_gets_a_controlling_terminal_of_the_default_size(pipes: Pipes) -> None:
    seen: list[bytes] = []
    # `tty` names the PTY; reading /dev/tty works only with a controlling terminal.
    code = await _run(["bash", "-c", "tty; stty size; : </dev/tty && echo ctty-ok"], pipes.terminal(), seen)
    out = b"".join(seen)
    assert code == 0
    assert b"/dev/pts/" in out and b"24 80" in out and b"ctty-ok" in out


async def test_the_last_output_before_exit_is_not_lost(pipes: Pipes) -> None:
    seen: list[bytes] = []
    pipes.drain_while_running()
    code = await _run(["bash", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo; echo END_$((40+2))"],
                      pipes.terminal(), seen)  # fmt: skip
    out = b"".join(seen)
    assert code == 0
    assert out.count(b"x") == 300_000 and out.endswith(b"END_42\r\n")
    assert pipes.local_output() == out


async def test_remote_input_reaches_the_program(pipes: Pipes) -> None:
    seen: list[bytes] = []
    ready = asyncio.Event()

    def sink(data: bytes) -> None:
        seen.append(data)
        if b"ready" in b"".join(seen):
            ready.set()

    runner = PtyRunner(
        ["bash", "-c", "echo ready; read line; echo got:$line"], pipes.terminal(), on_output=sink
    )
    await runner.start()
    waiting = asyncio.ensure_future(runner.wait())
    try:
        await asyncio.wait_for(ready.wait(), TIMEOUT_S)
        runner.write_input(b"remote\r")
        assert await asyncio.wait_for(waiting, TIMEOUT_S) == 0
    finally:
        waiting.cancel()
    assert b"got:remote" in b"".join(seen)


async def test_piped_stdin_is_forwarded_and_its_end_ends_the_input(pipes: Pipes) -> None:
    os.write(pipes.in_w, b"one\ntwo\n")
    os.close(pipes.in_w)
    seen: list[bytes] = []
    code = await _run(["bash", "-c", "cat >/dev/null; echo lines-done"], pipes.terminal(stdin=True), seen)
    assert code == 0
    assert b"lines-done" in b"".join(seen)


async def test_stdin_that_cannot_be_polled_is_read_anyway(pipes: Pipes, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "input.txt")
    with open(path, "wb") as f:
        f.write(b"from-a-file\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        seen: list[bytes] = []
        code = await _run(
            ["bash", "-c", "read x; echo got:$x"], LocalTerminal(fd, pipes.out_w, pipes.err_w), seen
        )
    finally:
        os.close(fd)
    assert code == 0 and b"got:from-a-file" in b"".join(seen)


async def test_a_missing_program_raises_file_not_found(pipes: Pipes) -> None:
    with pytest.raises(FileNotFoundError):
        await _run(["/nonexistent/program"], pipes.terminal())
