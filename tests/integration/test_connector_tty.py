"""The PTY runner on a real terminal (pexpect): raw passthrough, window size, Ctrl-C, restore on exit."""

from __future__ import annotations

import sys

import pexpect

RUNNER = (
    "import asyncio, sys\n"
    "from gateway.connector.pty import PtyRunner, default_terminal\n"
    "sys.exit(asyncio.run(PtyRunner(sys.argv[1:], default_terminal()).run()))\n"
)
# A non-interactive bash drops PS1 from its environment, so `env` sets it for the inner shell.
BASH = "env 'PS1=gw$ ' bash --norc --noprofile -i"
ENV = {"TERM": "dumb", "PATH": "/usr/bin:/bin", "INPUTRC": "/dev/null", "HOME": "/tmp"}
PROMPT = r"gw\$ "


def _spawn(shell_after: str) -> pexpect.spawn:
    # The outer bash runs the runner, then `shell_after` on the same terminal, so we can look at
    # the terminal's state once the runner has gone.
    outer = f"{sys.executable} -c '{RUNNER}' {BASH}; echo runner-status:$?; {shell_after}"
    child = pexpect.spawn("bash", ["-c", outer], env=ENV, encoding="utf-8", timeout=10, dimensions=(30, 100))
    child.delaybeforesend = None
    return child


def test_the_program_sees_the_local_window_size_and_its_changes() -> None:
    child = _spawn("true")
    child.expect(PROMPT)
    child.sendline("stty size")
    child.expect("30 100")
    # A job that reports the size when SIGWINCH reaches it: no race with the runner's handler.
    child.sendline(
        "sh -c 'trap \"stty size; exit\" WINCH; echo waiting-$((1+1)); while :; do sleep 0.05; done'"
    )
    child.expect("waiting-2")
    child.setwinsize(40, 132)  # SIGWINCH to the runner, which resizes the PTY: SIGWINCH to the job
    child.expect("40 132")
    child.expect(PROMPT)
    child.sendline("exit 9")
    child.expect("runner-status:9")
    child.expect(pexpect.EOF)


def test_ctrl_c_interrupts_the_foreground_job_not_the_runner() -> None:
    child = _spawn("true")
    child.expect(PROMPT)
    # The job announces itself once it runs (and owns the terminal): ^C before that would reach bash.
    child.sendline("sh -c 'echo started-$((1+1)); exec sleep 30'")
    child.expect("started-2")
    child.sendcontrol("c")
    child.expect(PROMPT, timeout=5)  # long before the 30 s are over
    child.sendline("echo alive-$((40+2))")
    child.expect("alive-42")
    child.sendline("exit")
    child.expect("runner-status:0")
    child.expect(pexpect.EOF)


def test_the_terminal_is_restored_after_the_program_exits() -> None:
    child = _spawn("stty -a")
    child.expect(PROMPT)
    child.sendline("exit 3")
    child.expect("runner-status:3")
    child.expect(pexpect.EOF)
    modes = (child.before or "").split()
    assert "icanon" in modes and "echo" in modes and "-icanon" not in modes
