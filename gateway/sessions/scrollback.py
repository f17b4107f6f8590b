"""The scrollback ring: the last bytes of a session's output, addressed by sequence number.

Output is one byte stream; a byte's ``seq`` is its offset in that stream. The ring holds the
window ``[start, end)`` of at most ``capacity`` bytes (plus up to one chunk not yet released):
a joiner replays it to get the current screen, a reconnecting participant resumes from its
``seq`` if that is still inside, and every participant reads from it at its own cursor, so
output is held once per session, never copied per participant.

Memory grows with the output, never preallocated: an idle session that printed a prompt holds
a few bytes. Small chunks (PTY reads average ~4 KiB, RECIPES §8) are merged into an open tail
of up to ``MERGE_BYTES`` so a flood of tiny writes does not cost an object each.
"""

from __future__ import annotations

from collections import deque

SCROLLBACK_BYTES = 8 * 1024 * 1024  # 8 MiB: a joiner sees the screen; a cut-off participant resumes
MERGE_BYTES = 16 * 1024  # 16 KiB: chunks smaller than this are merged into the open tail


class Scrollback:
    """A bounded window of the output stream. Pure: no I/O, no clock."""

    __slots__ = ("_capacity", "_chunks", "_dead", "_end", "_held")

    def __init__(self, capacity: int = SCROLLBACK_BYTES, start: int = 0) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        # (seq of the chunk's first byte, data); the last chunk may be an open bytearray.
        self._chunks: deque[tuple[int, bytes | bytearray]] = deque()
        self._dead = 0  # bytes at the front of the first chunk that were evicted
        self._held = 0  # live bytes (excluding ``_dead``)
        self._end = start

    @property
    def start(self) -> int:
        """Seq of the oldest byte still held (== ``end`` when empty)."""
        return self._end - self._held

    @property
    def end(self) -> int:
        """Seq of the next byte to be appended."""
        return self._end

    def __len__(self) -> int:
        return self._held

    def append(self, data: bytes) -> None:
        """Add bytes at ``end`` and evict the oldest ones beyond the capacity."""
        if not data:
            return
        size = len(data)
        tail = self._chunks[-1][1] if self._chunks else None
        if isinstance(tail, bytearray) and len(tail) + size <= MERGE_BYTES:
            tail += data
        elif size < MERGE_BYTES:
            self._chunks.append((self._end, bytearray(data)))
        else:
            self._chunks.append((self._end, data))
        self._end += size
        self._held += size
        self._evict()

    def reset(self, seq: int) -> None:
        """Forget everything and continue at ``seq`` (the connector skipped bytes)."""
        self._chunks.clear()
        self._dead = self._held = 0
        self._end = seq

    def _evict(self) -> None:
        excess = self._held - self._capacity
        while excess > 0:
            _, first = self._chunks[0]
            live = len(first) - self._dead
            if live <= excess:
                self._chunks.popleft()
                self._dead = 0
                self._held -= live
                excess -= live
            else:
                self._dead += excess
                self._held -= excess
                excess = 0

    def read(self, seq: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``seq``; ``start <= seq <= end`` is the caller's duty."""
        if not self.start <= seq <= self._end:
            raise IndexError(f"seq {seq} outside [{self.start}, {self._end}]")
        if seq == self._end or limit <= 0:
            return b""
        # Readers mostly follow the head: search from the newest chunk backwards.
        index = len(self._chunks) - 1
        while self._chunks[index][0] > seq:
            index -= 1
        parts: list[bytes] = []
        want = limit
        while want > 0 and index < len(self._chunks):
            chunk_seq, data = self._chunks[index]
            offset = seq - chunk_seq
            piece = data[offset : offset + want]
            if isinstance(piece, bytearray):
                piece = bytes(piece)
            parts.append(piece)
            want -= len(piece)
            seq += len(piece)
            index += 1
        return parts[0] if len(parts) == 1 else b"".join(parts)
