"""The text index and search of recordings: stripping, folding, times, bounds (no HTTP)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.core.errors import BadRequest
from gateway.recording.catalog import verification_summary
from gateway.recording.chain import Outcome, Report
from gateway.recording.markers import classify
from gateway.recording.search import MAX_QUERY_CHARS, Searcher, SearchLimits, check_query
from gateway.recording.textindex import TEXT_BLOCK, Stripper, fold


def cast(path: Path, events: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"version": 2, "width": 80, "height": 24})] + [json.dumps(e) for e in events]
    path.write_text("\n".join(lines) + "\n")
    return path


def feed_all(chunks: list[str], *, input_stream: bool = False) -> str:
    s = Stripper(input_stream=input_stream)
    return "".join(s.feed(c) for c in chunks)


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        (["\x1b[1;31mred\x1b[0m plain"], "red plain"),
        (["a\r\nb\rc"], "a\nb\nc"),
        (["tab\there"], "tab here"),
        (["\x1b[5;1Hone\x1b[6;1Htwo"], " one two"),  # cursor moves keep words apart
        (["x\x1b]52;c;c2VjcmV0\x07y"], "xy"),  # OSC 52 (clipboard write) with BEL
        (["x\x1b]0;title\x1b\\y"], "xy"),  # OSC with ST
        (["x\x1b]52;c;AAAA", "BBBB\x07y"], "xy"),  # split across chunks
        (["x\x1b]0;ti\x1b", "\\y"], "xy"),  # split inside ST
        (["x\x1b[3", "1mred"], "xred"),  # CSI split
        (["\x1bPdcs data\x1b\\ok"], "ok"),
        (["N\x08NA\x08AM\x08ME\x08E"], "NAME"),  # overstrike (man pages)
        (["bell\x07 nul\x00 del\x7f"], "bell nul del"),
        (["\x9b31mc1\x9bm"], "c1"),  # 8-bit CSI
        (["x\x1b]52;c;" + "A" * 70_000, "A" * 10 + "\x07after"], "xafter"),  # huge payload
    ],
)
def test_output_is_stripped_of_escape_sequences_and_controls(chunks: list[str], expected: str) -> None:
    assert feed_all(chunks) == expected


def test_fold_keeps_utf8_lengths() -> None:
    for text in ("ABC déjà VU", "İstanbul ΣΊΣΥΦΟΣ", "straße ẞ", "Ⱥ"):
        folded = fold(text)
        assert len(folded.encode()) == len(text.encode()), text
        assert all(len(a.encode()) == len(b.encode()) for a, b in zip(text, folded, strict=True))
    assert fold("DéJÀ") == "déjà"


def test_query_checks() -> None:
    assert check_query("(a+)+$") == "(a+)+$"
    for bad in ("", "  ", "a\nb", "a\x1bb", "x" * (MAX_QUERY_CHARS + 1)):
        with pytest.raises(BadRequest):
            check_query(bad)


def test_hits_have_the_time_the_text_was_on_screen(tmp_path: Path) -> None:
    path = cast(
        tmp_path / "r/2026/01/ses_t.cast",
        [
            [0.5, "o", "$ "],
            [1.0, "i", "e"], [1.2, "i", "c"], [1.4, "i", "ho hi"], [1.5, "i", "\x7f\x7fHI"], [1.9, "i", "\r"],
            [2.0, "o", "echo HI\r\n"], [2.05, "o", "HI\r\n"], [30.0, "o", "$ "],
            [31.0, "m", "approved #1 (ok)"],
        ],
    )  # fmt: skip
    s = Searcher(tmp_path / "idx")
    hits = s.search([path], "echo hi").hits
    assert [(h.stream, h.t, h.match) for h in hits] == [("o", 2.05, "echo HI"), ("i", 1.5, "echo HI")]
    assert hits[0].before == "$ " and hits[0].after == " ⏎ HI ⏎ $ "
    assert [(h.stream, h.t) for h in s.search([path], "APPROVED").hits] == [("m", 31.0)]
    assert s.search([path], "echo hi hi").hits == []  # the erased " hi" is gone


def test_index_is_cached_private_and_rebuilt_when_the_cast_changes(tmp_path: Path) -> None:
    path = cast(tmp_path / "r/2026/01/ses_c.cast", [[1.0, "o", "first"]])
    s = Searcher(tmp_path / "idx")
    assert s.search([path], "first").indexed == 1
    assert s.search([path], "first").indexed == 0
    idx = s.index_path("ses_c")
    assert idx.stat().st_mode & 0o777 == 0o600 and idx.parent.stat().st_mode & 0o777 == 0o700
    with path.open("a") as f:
        f.write(json.dumps([2.0, "o", " second"]) + "\n" + '[3.0, "o", "partial')
    r = s.search([path], "second")
    assert r.indexed == 1 and [h.t for h in r.hits] == [2.0]
    assert s.search([path], "partial").hits == []  # a half-written line is not indexed yet
    s.prune([])
    assert not idx.exists()


def test_snippets_come_from_compressed_original_text_across_blocks(tmp_path: Path) -> None:
    filler = "Lorem Ipsum " * (TEXT_BLOCK // 12)
    path = cast(tmp_path / "r/2026/01/ses_z.cast", [[1.0, "o", filler[: TEXT_BLOCK - 3] + "NeedleX here"]])
    hit = Searcher(tmp_path / "idx").search([path], "needlex").hits[0]
    assert (hit.match, hit.after) == ("NeedleX", " here") and hit.before.endswith("Lorem Ipsum ")


def test_limits_hits_per_recording_and_time(tmp_path: Path) -> None:
    paths = [cast(tmp_path / f"r/2026/01/ses_{i}.cast", [[1.0, "o", "ab " * 100]]) for i in range(5)]
    s = Searcher(tmp_path / "idx")
    r = s.search(paths, "ab", SearchLimits(max_hits=30, per_recording=10))
    assert len(r.hits) == 30 and r.truncated and r.reason == "hits" and r.searched == 3
    r = s.search(paths, "ab", SearchLimits(time_s=0.0))
    assert r.truncated and r.reason == "time" and r.searched <= 1
    r = Searcher(tmp_path / "idx2").search(paths, "ab", SearchLimits(index_time_s=0.0))
    assert r.unindexed == 5 and r.reason == "indexing"


def test_a_regex_bomb_is_a_plain_string(tmp_path: Path) -> None:
    path = cast(tmp_path / "r/2026/01/ses_re.cast", [[1.0, "o", "a" * 200_000 + "!"]])
    began = time.monotonic()
    assert Searcher(tmp_path / "idx").search([path], "(a+)+$").hits == []
    assert time.monotonic() - began < 1.0


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("join bob (view_only)", "join"),
        ("leave bob: closed", "leave"),
        ("approval requested #1 by bob: rule r (policy v)", "approval_request"),
        ("approved #1 (ok)", "approval"),
        ("denied #2 (timed out)", "denial"),
        ("denied line from bob: rule r (policy v)", "denial"),
        ("allowed line from bob: rule r (policy v)", "allowed"),
        ("refused input from bob (view only)", "refusal"),
        ("mode bob -> privileged: granted", "mode"),
        ("end: owner stopped sharing", "end"),
        ("tool call Bash: ls", "tool_call"),
        ("connector lost", "other"),
    ],
)
def test_marker_kinds(label: str, kind: str) -> None:
    assert classify(label) == kind


def test_verification_summary_names_the_worst_stream() -> None:
    ok = Report(Outcome.INTACT, "intact", stream="cast", verified_t=3.0)
    tail = Report(Outcome.TRUNCATED_TAIL, "verified up to t=1.0, unsigned tail of 2 lines", stream="audit")
    bad = Report(Outcome.ALTERED, "first mismatch at line 7: line 7 was altered", stream="audit", line=7)
    assert verification_summary([ok, ok])["state"] == "intact"
    assert verification_summary([ok, tail])["state"] == "unsigned_tail"
    summary = verification_summary([ok, bad])
    assert (summary["state"], summary["line"], summary["stream"], summary["exit_code"]) == (
        "altered",
        7,
        "audit",
        1,
    )
