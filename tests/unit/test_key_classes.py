"""Keys pressed outside the composer are cut and classed before policy sees them."""

from __future__ import annotations

import pytest

from gateway.policy import KeyClass
from gateway.sessions.keys import classify

INT, N, C = KeyClass.INTERRUPT, KeyClass.NAVIGATION, KeyClass.CONFIRM
M, R = KeyClass.MODE_SWITCH, KeyClass.RAW


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"\x03", [(INT, b"\x03")], id="ctrl-c"),
        pytest.param(b"\x1b", [(INT, b"\x1b")], id="lone-esc"),
        pytest.param(b"\x1b[A", [(N, b"\x1b[A")], id="arrow-up-csi"),
        pytest.param(b"\x1bOB", [(N, b"\x1bOB")], id="arrow-down-ss3"),
        pytest.param(b"\t", [(N, b"\t")], id="tab"),
        pytest.param(b"\x1b[5~", [(N, b"\x1b[5~")], id="page-up"),
        pytest.param(b"\r", [(C, b"\r")], id="enter-alone"),
        pytest.param(b"y", [(C, b"y")], id="yes-alone"),
        pytest.param(b"\x1b[Z", [(M, b"\x1b[Z")], id="shift-tab"),
        pytest.param(b"ls\r", [(R, b"ls\r")], id="typed-text-is-raw"),
        pytest.param(b"yes", [(R, b"yes")], id="a-word-is-not-a-confirmation"),
        pytest.param(
            b"\x1b[200~rm -rf /\x1b[201~",
            [(R, b"\x1b[200~"), (R, b"rm -rf /"), (R, b"\x1b[201~")],
            id="bracketed-paste-is-raw",
        ),
        pytest.param(b"\x1b]52;c;aGk=\x07", [(R, b"\x1b]"), (R, b"52;c;aGk=\x07")], id="osc-is-not-a-key"),
        pytest.param(b"\x1bx", [(R, b"\x1bx")], id="alt-x-is-raw"),
        pytest.param(b"a\x03b", [(R, b"a"), (INT, b"\x03"), (R, b"b")], id="interrupt-inside-text"),
        pytest.param(b"\x1b[1;5C", [(R, b"\x1b[1;5C")], id="ctrl-arrow-unknown-is-raw"),
    ],
)
def test_classify(data: bytes, expected: list[tuple[KeyClass, bytes]]) -> None:
    assert classify(data) == expected
