"""The session state machine, table by table: input gate, refusal bursts, expiry, output offsets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.core.errors import Conflict, Forbidden, NotFound
from gateway.core.ids import SessionId, UserId
from gateway.core.modes import Mode
from gateway.sessions.ports import ParticipantId, SessionMeta
from gateway.sessions.state import (
    EndReason,
    Forward,
    Ignored,
    Judge,
    Limits,
    OutputAccepted,
    ParticipantExpired,
    RefusalReason,
    Refused,
    SessionExpired,
    SessionState,
)

T0 = 1000.0
ALL_MODES = frozenset(Mode)
META = SessionMeta(
    owner_id=UserId("usr_owner"),
    owner_name="owner",
    host="laptop",
    cwd="/src",
    command=("bash",),
    cols=100,
    rows=30,
)
P1 = ParticipantId("par_1")
P2 = ParticipantId("par_2")


def session(**limits: object) -> SessionState:
    return SessionState(SessionId("ses_1"), META, created_at=T0, limits=Limits(**limits))  # type: ignore[arg-type]


def with_participant(mode: Mode, **limits: object) -> SessionState:
    s = session(grantable_modes=ALL_MODES, **limits)
    s.attach(P1, UserId("usr_1"), "alice", mode, T0)
    return s


# --- the input gate ------------------------------------------------------------------------


@dataclass(frozen=True)
class GateRow:
    id: str
    mode: Mode
    connector_online: bool = True
    recording_failed: bool = False
    ended: bool = False
    attached: bool = True
    expected: type[Forward] | type[Judge] | RefusalReason = Forward


GATE = [
    GateRow("view_only is always refused", Mode.VIEW_ONLY, expected=RefusalReason.VIEW_ONLY),
    GateRow(
        "view_only refused as view_only even when offline",
        Mode.VIEW_ONLY,
        connector_online=False,
        expected=RefusalReason.VIEW_ONLY,
    ),
    GateRow(
        "view_only refused as view_only even if recording failed",
        Mode.VIEW_ONLY,
        recording_failed=True,
        expected=RefusalReason.VIEW_ONLY,
    ),
    GateRow(
        "approved_execution asks policy (the broker judges each key and line)",
        Mode.APPROVED_EXECUTION,
        expected=Judge,
    ),
    GateRow(
        "approved_execution refused when the recording failed, before policy",
        Mode.APPROVED_EXECUTION,
        recording_failed=True,
        expected=RefusalReason.RECORDING_FAILED,
    ),
    GateRow("privileged is forwarded", Mode.PRIVILEGED, expected=Forward),
    GateRow(
        "privileged refused when the recording failed",
        Mode.PRIVILEGED,
        recording_failed=True,
        expected=RefusalReason.RECORDING_FAILED,
    ),
    GateRow(
        "privileged refused while the connector is offline",
        Mode.PRIVILEGED,
        connector_online=False,
        expected=RefusalReason.CONNECTOR_OFFLINE,
    ),
    GateRow("nothing after the end", Mode.PRIVILEGED, ended=True, expected=RefusalReason.NOT_ATTACHED),
    GateRow("unknown participant", Mode.PRIVILEGED, attached=False, expected=RefusalReason.NOT_ATTACHED),
]


@pytest.mark.parametrize("row", GATE, ids=lambda r: r.id)
def test_input_gate(row: GateRow) -> None:
    s = with_participant(row.mode)
    if not row.connector_online:
        s.connector_lost(T0)
    if row.recording_failed:
        s.fail_recording()
    if row.ended:
        s.end("ended by an admin", T0)
    pid = P1 if row.attached else P2
    verdict = s.participant_input(pid, T0 + 1)
    if row.expected is Forward:
        assert verdict == Forward()
    elif row.expected is Judge:
        assert verdict == Judge()
    else:
        assert isinstance(verdict, Refused)
        assert verdict.reason is row.expected


def test_forwarded_input_is_session_activity_and_refused_input_is_not() -> None:
    s = session(grantable_modes=ALL_MODES)
    s.attach(P1, UserId("u1"), "viewer", Mode.VIEW_ONLY, T0)
    s.attach(P2, UserId("u2"), "driver", Mode.PRIVILEGED, T0)
    s.participant_input(P1, T0 + 50)
    assert s.last_activity == T0
    s.participant_input(P2, T0 + 60)
    assert s.last_activity == T0 + 60


@dataclass(frozen=True)
class ResizeRow:
    id: str
    mode: Mode
    cols: int
    rows: int
    expected: type[Ignored] | RefusalReason


RESIZES = [
    ResizeRow("view_only resize refused", Mode.VIEW_ONLY, 80, 24, RefusalReason.VIEW_ONLY),
    ResizeRow("view_only absurd resize refused as view_only", Mode.VIEW_ONLY, 0, 0, RefusalReason.VIEW_ONLY),
    ResizeRow("privileged resize ignored (owner sets size)", Mode.PRIVILEGED, 120, 40, Ignored),
    ResizeRow("0x0 refused", Mode.PRIVILEGED, 0, 0, RefusalReason.BAD_SIZE),
    ResizeRow("100000x100000 refused", Mode.PRIVILEGED, 100_000, 100_000, RefusalReason.BAD_SIZE),
]


@pytest.mark.parametrize("row", RESIZES, ids=lambda r: r.id)
def test_participant_resize(row: ResizeRow) -> None:
    s = with_participant(row.mode)
    verdict = s.participant_resize(P1, row.cols, row.rows, T0)
    if row.expected is Ignored:
        assert verdict == Ignored()
    else:
        assert isinstance(verdict, Refused)
        assert verdict.reason is row.expected


@pytest.mark.parametrize(
    ("cols", "rows", "accepted"),
    [(80, 24, True), (1, 1, True), (1000, 1000, True), (0, 24, False), (80, 0, False), (1001, 24, False)],
)
def test_connector_resize_bounds(cols: int, rows: int, accepted: bool) -> None:
    s = session()
    assert s.connector_resize(cols, rows) is accepted
    assert (s.cols, s.rows) == ((cols, rows) if accepted else (100, 30))


# --- refusal bursts --------------------------------------------------------------------------


BURSTS = [
    # (id, refusal times relative to T0, expected audit flags, expected "unaudited" on audited ones)
    ("a single refusal is audited", [0.0], [True], [0]),
    ("a burst yields one audit", [0.0, 0.1, 0.2, 4.9], [True, False, False, False], [0]),
    ("the window reopens after 5 s", [0.0, 1.0, 5.0, 5.1], [True, False, True, False], [0, 1]),
    (
        "a held key is audited once per window",
        [i * 0.5 for i in range(21)],
        [i % 10 == 0 for i in range(21)],
        [0, 9, 9],
    ),
    ("spaced refusals are each audited", [0.0, 10.0, 20.0], [True, True, True], [0, 0, 0]),
]


@pytest.mark.parametrize(("name", "times", "audits", "unaudited"), BURSTS, ids=[b[0] for b in BURSTS])
def test_refusal_bursts(name: str, times: list[float], audits: list[bool], unaudited: list[int]) -> None:
    s = with_participant(Mode.VIEW_ONLY)
    verdicts = [s.participant_input(P1, T0 + t) for t in times]
    assert all(isinstance(v, Refused) for v in verdicts)
    refused = [v for v in verdicts if isinstance(v, Refused)]
    assert [v.audit for v in refused] == audits
    assert [v.unaudited for v in refused if v.audit] == unaudited
    assert [v.total for v in refused] == list(range(1, len(times) + 1))
    assert s.refusals == len(times)


def test_input_and_resize_refusals_share_one_burst() -> None:
    s = with_participant(Mode.VIEW_ONLY)
    first = s.participant_input(P1, T0)
    second = s.participant_resize(P1, 80, 24, T0 + 1)
    assert isinstance(first, Refused) and first.audit
    assert isinstance(second, Refused) and not second.audit and second.total == 2


# --- expiry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TickRow:
    id: str
    at: float  # seconds after T0
    output_at: float | None = None
    lost_at: float | None = None
    touch_at: float | None = None
    expected: tuple[object, ...] = ()


LIMITS = {
    "idle_timeout_s": 100.0,
    "max_duration_s": 1000.0,
    "participant_idle_timeout_s": 50.0,
    "connector_grace_s": 30.0,
}
TICKS = [
    TickRow("nothing yet", at=10),
    TickRow("participant idle", at=50, output_at=40, expected=(ParticipantExpired(P1),)),
    TickRow("touch keeps a participant", at=60, output_at=55, touch_at=20),
    TickRow("session idle wins over participants", at=100, expected=(SessionExpired(EndReason.IDLE),)),
    TickRow("output keeps the session alive", at=120, output_at=90, touch_at=100),
    TickRow(
        "absolute maximum",
        at=1000,
        output_at=990,
        touch_at=990,
        expected=(SessionExpired(EndReason.MAX_DURATION),),
    ),
    TickRow("connector within grace", at=29, lost_at=0),
    TickRow(
        "connector lost after grace", at=30, lost_at=0, expected=(SessionExpired(EndReason.CONNECTOR_LOST),)
    ),
]


@pytest.mark.parametrize("row", TICKS, ids=lambda r: r.id)
def test_tick(row: TickRow) -> None:
    s = with_participant(Mode.VIEW_ONLY, **LIMITS)
    if row.output_at is not None:
        s.accept_output(0, 10, T0 + row.output_at)
    if row.lost_at is not None:
        s.connector_lost(T0 + row.lost_at)
    if row.touch_at is not None:
        s.touch(P1, T0 + row.touch_at)
    assert tuple(s.tick(T0 + row.at)) == row.expected
    deadline = s.next_deadline()
    assert deadline is not None
    assert (deadline <= T0 + row.at) is bool(row.expected), "next_deadline must agree with tick"


def test_resumed_connector_cancels_the_grace_period() -> None:
    s = session(connector_grace_s=30.0)
    s.connector_lost(T0)
    s.connector_resumed()
    assert s.tick(T0 + 31) == []
    assert s.connector_online


def test_an_ended_session_has_no_deadline_and_no_expiry() -> None:
    s = session(idle_timeout_s=1.0)
    assert s.end(EndReason.OWNER_STOPPED, T0)
    assert not s.end(EndReason.IDLE, T0 + 1), "ending is idempotent: the first reason stays"
    assert s.end_reason == EndReason.OWNER_STOPPED
    assert s.tick(T0 + 100) == []
    assert s.next_deadline() is None


# --- attach ------------------------------------------------------------------------------------


def test_only_grantable_modes_are_granted() -> None:
    s = session()
    s.attach(P1, UserId("u"), "v", Mode.VIEW_ONLY, T0)
    for mode in (Mode.APPROVED_EXECUTION, Mode.PRIVILEGED):
        with pytest.raises(Forbidden):
            s.attach(P2, UserId("u"), "v", mode, T0)
    assert list(s.participants) == [P1]


def test_attach_refused_twice_and_after_the_end() -> None:
    s = session()
    s.attach(P1, UserId("u"), "v", Mode.VIEW_ONLY, T0)
    with pytest.raises(Conflict):
        s.attach(P1, UserId("u"), "v", Mode.VIEW_ONLY, T0)
    s.end("x", T0)
    with pytest.raises(NotFound):
        s.attach(P2, UserId("u"), "v", Mode.VIEW_ONLY, T0)


# --- output offsets ----------------------------------------------------------------------------


OUTPUTS = [
    # (id, held before, chunk seq, chunk size, expected, held after)
    ("in order", 100, 100, 10, OutputAccepted(skip=0, gap=0), 110),
    ("resent overlap is skipped", 100, 95, 10, OutputAccepted(skip=5, gap=0), 105),
    ("fully duplicate chunk", 100, 50, 10, OutputAccepted(skip=10, gap=0), 100),
    ("a hole is reported", 100, 120, 10, OutputAccepted(skip=0, gap=20), 130),
]


@pytest.mark.parametrize(
    ("name", "held", "seq", "size", "expected", "after"), OUTPUTS, ids=[o[0] for o in OUTPUTS]
)
def test_accept_output(
    name: str, held: int, seq: int, size: int, expected: OutputAccepted, after: int
) -> None:
    s = session()
    s.accept_output(0, held, T0)
    assert s.accept_output(seq, size, T0 + 1) == expected
    assert s.output_seq == after


def test_duplicate_output_is_not_activity() -> None:
    s = session()
    s.accept_output(0, 10, T0 + 5)
    s.accept_output(0, 10, T0 + 9)
    assert s.last_activity == T0 + 5
