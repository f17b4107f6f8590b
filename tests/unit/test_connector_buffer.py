"""The connector's replay buffer and reconnect back-off: pure arithmetic, no event loop."""

from __future__ import annotations

import random

import pytest

from gateway.connector.link import BACKOFF_MAX_S, BacklogLost, OutputBuffer, backoff_delay


def test_offsets_are_absolute_and_reads_start_anywhere_in_the_window() -> None:
    buf = OutputBuffer(limit_bytes=10)
    buf.append(b"abcdef")
    buf.append(b"ghij")
    assert (buf.base, buf.end) == (0, 10)
    assert buf.read(3, 4) == b"defg"
    assert buf.read(10, 4) == b""


def test_the_oldest_bytes_fall_out_when_the_window_is_full() -> None:
    buf = OutputBuffer(limit_bytes=10)
    buf.append(b"0123456789abc")
    assert (buf.base, buf.end) == (3, 13)
    assert buf.read(3, 100) == b"3456789abc"
    with pytest.raises(BacklogLost):
        buf.read(2, 1)


def test_release_forgets_what_the_gateway_holds_and_never_goes_back() -> None:
    buf = OutputBuffer(limit_bytes=100)
    buf.append(b"hello world")
    buf.release(6)
    assert (buf.base, buf.end) == (6, 11)
    assert buf.read(6, 5) == b"world"
    buf.release(3)
    assert buf.base == 6
    buf.release(50)  # beyond the end: everything is released, offsets stay consistent
    assert (buf.base, buf.end) == (11, 11)
    buf.append(b"!")
    assert buf.read(11, 1) == b"!"


def test_backoff_doubles_from_half_a_second_to_thirty_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (60, 30.0)]:
        for _ in range(50):
            delay = backoff_delay(attempt, rng)
            assert ceiling / 2 <= delay <= ceiling <= BACKOFF_MAX_S
