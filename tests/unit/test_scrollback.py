"""The scrollback ring: bounded by bytes, addressed by seq, small writes merged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sessions.scrollback import MERGE_BYTES, Scrollback


def test_an_empty_ring_holds_nothing() -> None:
    ring = Scrollback(capacity=10)
    assert (ring.start, ring.end, len(ring)) == (0, 0, 0)
    assert ring.read(0, 100) == b""


def test_reads_by_seq_across_chunks() -> None:
    ring = Scrollback(capacity=100)
    for part in (b"hello ", b"big ", b"world"):
        ring.append(part)
    assert ring.read(0, 100) == b"hello big world"
    assert ring.read(6, 3) == b"big"
    assert ring.read(15, 10) == b""


def test_eviction_keeps_the_newest_bytes() -> None:
    ring = Scrollback(capacity=10)
    ring.append(b"0123456789")
    ring.append(b"abcd")
    assert (ring.start, ring.end, len(ring)) == (4, 14, 10)
    assert ring.read(4, 100) == b"456789abcd"
    with pytest.raises(IndexError):
        ring.read(3, 1)


def test_big_chunks_are_held_without_a_copy() -> None:
    ring = Scrollback(capacity=4 * MERGE_BYTES)
    big = bytes(MERGE_BYTES)
    ring.append(big)
    assert ring.read(0, MERGE_BYTES) is big


def test_many_tiny_writes_are_merged() -> None:
    ring = Scrollback(capacity=1024 * 1024)
    for _ in range(10_000):
        ring.append(b"x")
    assert len(ring._chunks) == 1, "10,000 one-byte writes fit one merged chunk"
    assert ring.read(0, 20_000) == b"x" * 10_000


def test_reset_starts_over_at_a_new_seq() -> None:
    ring = Scrollback(capacity=100)
    ring.append(b"abc")
    ring.reset(50)
    assert (ring.start, ring.end) == (50, 50)
    ring.append(b"z")
    assert ring.read(50, 5) == b"z"


@given(
    st.integers(min_value=1, max_value=64),
    st.lists(st.binary(min_size=1, max_size=40), max_size=30),
)
def test_the_ring_always_holds_the_tail_of_the_stream(capacity: int, writes: list[bytes]) -> None:
    ring = Scrollback(capacity=capacity)
    stream = b""
    for w in writes:
        ring.append(w)
        stream += w
        assert ring.end == len(stream)
        assert len(ring) == min(capacity, len(stream))
        assert ring.read(ring.start, capacity) == stream[ring.start :]
