"""Classing the keys a participant presses outside the composer (pure).

In approved execution, raw input is never forwarded as typed: it is cut into keys, each key is
classed, and policy has one rule per class (``key_rules``). What cannot be classed as a known
key is ``raw``, which the shipped policies deny.

    interrupt    Ctrl-C, a lone Esc
    navigation   arrows, Tab, Home/End, Page Up/Down (CSI and SS3 forms)
    confirm      Enter alone, or a lone y / n / Y / N (an answer to a dialog)
    mode_switch  Shift-Tab (ESC [ Z): cycles an assistant's permission mode
    raw          everything else: text, other control bytes, unknown escape sequences
"""

from __future__ import annotations

from gateway.policy import KeyClass

ESC = 0x1B
_NAVIGATION_FINALS = frozenset(b"ABCDHF")  # arrows, Home, End (CSI x or SS3 x)
_NAVIGATION_TILDE = frozenset({b"1", b"4", b"5", b"6", b"7", b"8", b"2", b"3"})  # Home End PgUp PgDn Ins Del
_CONFIRM_ALONE = frozenset({b"\r", b"\n", b"y", b"n", b"Y", b"N"})


def _escape_end(data: bytes, i: int) -> int:
    """Index after the escape sequence starting at ``data[i] == ESC`` (a lone Esc is one byte)."""
    if i + 1 >= len(data):
        return i + 1
    nxt = data[i + 1]
    if nxt == ord("O") and i + 2 < len(data):  # SS3: ESC O x
        return i + 3
    if nxt == ord("["):  # CSI: parameters and intermediates, then a final byte 0x40-0x7E
        j = i + 2
        while j < len(data) and not 0x40 <= data[j] <= 0x7E:
            j += 1
        return min(j + 1, len(data))
    return i + 2  # ESC + a byte: an Alt-key or the start of OSC/DCS, never a lone Esc


def _class_of(key: bytes) -> KeyClass:
    if key in (b"\x03", b"\x1b"):
        return KeyClass.INTERRUPT
    if key == b"\t":
        return KeyClass.NAVIGATION
    if key == b"\x1b[Z":
        return KeyClass.MODE_SWITCH
    if len(key) == 3 and key[:2] in (b"\x1b[", b"\x1bO") and key[2] in _NAVIGATION_FINALS:
        return KeyClass.NAVIGATION
    if key.startswith(b"\x1b[") and key.endswith(b"~") and key[2:-1] in _NAVIGATION_TILDE:
        return KeyClass.NAVIGATION
    return KeyClass.RAW


def classify(data: bytes) -> list[tuple[KeyClass, bytes]]:
    """Cut ``data`` into keys and class each; runs of plain bytes are one ``raw`` key."""
    if data in _CONFIRM_ALONE:
        return [(KeyClass.CONFIRM, data)]
    keys: list[tuple[KeyClass, bytes]] = []
    raw = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == ESC:
            end = _escape_end(data, i)
        elif b in (0x03, 0x09):
            end = i + 1
        else:
            raw.append(b)
            i += 1
            continue
        if raw:
            keys.append((KeyClass.RAW, bytes(raw)))
            raw.clear()
        key = data[i:end]
        keys.append((_class_of(key), key))
        i = end
    if raw:
        keys.append((KeyClass.RAW, bytes(raw)))
    return keys
