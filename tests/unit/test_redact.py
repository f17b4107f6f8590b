"""Secret redaction: the policy section, and the streaming masker with secrets split anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.policy import PolicyError, parse_policy, shipped_policy_text
from gateway.policy.redaction import DEFAULT_NAMES, RedactionSpec, check_defaults
from gateway.sessions.redact import MASK_PARTIAL_BYTES, TRUNCATED, OutputMasker, Redactor, describe

AWS = b"AKIAIOSFODNN7EXAMPLE"
SAMPLES = {  # one made-up secret per built-in pattern, and the bytes that must not survive
    "aws-access-key-id": (b"key " + AWS + b" ok", AWS),
    "aws-secret-access-key": (
        b"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    "github-token": (b"token ghp_" + b"a1B2" * 9 + b" done", b"ghp_" + b"a1B2" * 9),
    "github-fine-grained-token": (b"github_pat_" + b"x" * 40 + b"\r\n", b"github_pat_" + b"x" * 40),
    "gitlab-token": (b"GL=glpat-abcdefghij0123456789 x", b"glpat-abcdefghij0123456789"),
    "slack-token": (b"xoxb-1234567890-abcdef ", b"xoxb-1234567890-abcdef"),
    "anthropic-or-openai-key": (b"sk-ant-api03-" + b"Z" * 40 + b"\n", b"sk-ant-api03-" + b"Z" * 40),
    "stripe-key": (b"sk_live_" + b"4" * 24 + b" ", b"sk_live_" + b"4" * 24),
    "google-api-key": (b"AIza" + b"S" * 35 + b" ", b"AIza" + b"S" * 35),
    "private-key-block": (
        b"-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAABG5v\r\nbmUAAAAEbm9u==\r\n"
        b"-----END OPENSSH PRIVATE KEY-----\r\n$ ",
        b"b3BlbnNzaC1rZXktdjEAAAAABG5v",
    ),
    "bearer-token": (
        b"Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789\r\n",
        b"abcdefghijklmnopqrstuvwxyz0123456789",
    ),
    "jwt": (
        b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ",
        b"dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
}


def run(redactor: Redactor, pieces: list[bytes]) -> tuple[bytes, int]:
    out = bytearray()
    count = 0
    for piece in pieces:
        data, counts = redactor.feed(piece)
        out += data
        count += sum(counts.values())
    data, counts = redactor.flush()
    return bytes(out + data), count + sum(counts.values())


def test_every_builtin_pattern_passes_the_policy_checks_and_has_a_sample() -> None:
    check_defaults()
    assert set(SAMPLES) == DEFAULT_NAMES


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_builtin_secret_is_masked_wherever_the_output_is_cut(name: str) -> None:
    text, secret = SAMPLES[name]
    redactor = Redactor(RedactionSpec().active())
    for cut in range(len(text) + 1):
        out, count = run(redactor, [text[:cut], text[cut:]])
        assert secret not in out, (name, cut, out)
        assert len(out) == len(text), "masking keeps the length (seq numbers, layout)"
        assert count >= 1
        assert out.count(b"\n") == text.count(b"\n") and redactor.held == 0


def test_only_the_secret_group_is_masked_and_the_rest_is_unchanged() -> None:
    out, counts = Redactor(RedactionSpec().active()).mask_once(SAMPLES["bearer-token"][0])
    assert out == b"Authorization: Bearer " + b"*" * 36 + b"\r\n"
    assert counts == {"bearer-token": 1}


def test_text_without_secrets_passes_unchanged_and_is_not_held() -> None:
    redactor = Redactor(RedactionSpec().active())
    text = b"\x1b[32mCompiling\x1b[0m crate v0.1 (src/main.rs)\r\nAll 12 tests passed; skip_list=none\r\n$ "
    assert redactor.feed(text) == (text, {})
    assert redactor.held == 0


def test_a_possible_start_at_the_end_is_held_until_more_comes_or_a_flush() -> None:
    redactor = Redactor(RedactionSpec().active())
    out, _ = redactor.feed(b"id=AKIAIOSF")
    assert out == b"id=" and redactor.held == 8
    out, counts = redactor.feed(b"ODNN7EXAMPLE rest")
    assert out == b"AKIA".replace(b"AKIA", b"****") + b"*" * 16 + b" rest" and counts == {
        "aws-access-key-id": 1
    }


def test_a_flush_sends_a_short_harmless_tail_as_is_and_masks_a_long_cut_off_secret() -> None:
    redactor = Redactor(RedactionSpec().active())
    assert redactor.feed(b"id=AKIAIO") == (b"id=", {}) and redactor.held == 6
    assert redactor.flush() == (b"AKIAIO", {})
    cut = b"ghp_" + b"x" * 20  # a token cut off after 24 bytes, nothing more for a while
    assert len(cut) >= MASK_PARTIAL_BYTES
    assert redactor.feed(b"$ " + cut)[0] == b"$ "
    assert redactor.flush() == (b"*" * len(cut), {TRUNCATED: 1})


@settings(max_examples=150, deadline=None)
@given(
    before=st.binary(max_size=60),
    after=st.binary(max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_an_aws_key_anywhere_in_any_chunking_never_gets_through(
    before: bytes, after: bytes, cuts: list[int]
) -> None:
    text = before + b" " + AWS + b" " + after
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    out, _ = run(Redactor(RedactionSpec().active()), pieces)
    assert AWS not in out and len(out) == len(text)


def test_custom_patterns_and_disabled_builtins() -> None:
    spec = RedactionSpec(
        disable=("jwt",), patterns=({"name": "internal", "regex": r"token=(?P<secret>it_[0-9a-f]{16})"},)
    )
    names = [n for n, _ in spec.active()]
    assert "jwt" not in names and names[-1] == "internal"
    out, counts = Redactor(spec.active()).mask_once(b"token=it_0123456789abcdef " + SAMPLES["jwt"][0])
    assert out.startswith(b"token=" + b"*" * 19 + b" eyJ") and counts == {"internal": 1}
    assert RedactionSpec(enabled=False).active() == ()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"disable": ["aws"]}, "unknown built-in pattern 'aws'"),
        ({"patterns": [{"name": "x", "regex": "(a+)+"}]}, "nested quantifier"),
        ({"patterns": [{"name": "x", "regex": "a*"}]}, "matches the empty string"),
        ({"patterns": [{"name": "x", "regex": "clé=\\w+"}]}, "must be ASCII"),
        ({"patterns": [{"name": "x", "regex": "(unclosed"}]}, "bad regular expression"),
        ({"patterns": [{"name": "jwt", "regex": "x"}]}, "'jwt' is used twice"),
        ({"patterns": [{"name": "a", "regex": "x", "flags": "i"}]}, "Extra inputs"),
    ],
)
def test_a_bad_redaction_section_is_refused_with_a_clear_message(
    section: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        RedactionSpec.model_validate(section)


def test_a_policy_file_with_a_bad_pattern_names_the_line() -> None:
    text = shipped_policy_text("demo") + "redaction:\n  patterns:\n    - name: bad\n      regex: '(x+)*'\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    lines = len(text.splitlines())
    where = f"policy.yaml:{lines}: redaction.patterns[0].regex"
    assert str(caught.value).startswith(f"{where}: nested quantifier")


def test_a_short_possible_start_goes_out_at_once_and_the_secret_after_it_is_still_masked() -> None:
    redactor = Redactor(RedactionSpec().active())
    assert redactor.feed(b"x") == (b"x", {}), "a typed key echoes at once (x may begin xoxb-)"
    assert redactor.feed(b" AKIA") == (b" AKIA", {}) and redactor.held == 0
    out, counts = redactor.feed(b"IOSFODNN7EXAMPLE done")
    assert out == b"*" * 16 + b" done" and counts == {"aws-access-key-id": 1}
    assert AWS not in b"x AKIA" + out


def test_the_masker_follows_a_policy_change_and_flushes_what_the_old_one_held() -> None:
    current: dict[str, object] = {"version": "v1", "spec": RedactionSpec()}
    masker = OutputMasker(lambda: (str(current["version"]), current["spec"]))  # type: ignore[return-value]
    assert masker.feed(b"x AKIAIOSF")[0] == b"x "
    v2 = RedactionSpec(defaults=False, patterns=({"name": "custom", "regex": "SECRET[0-9]{4}"},))  # type: ignore[arg-type]
    current.update(version="v2", spec=v2)
    out, counts = masker.feed(b"ODNN7EXAMPLE SECRET1234\n")
    assert out == b"AKIAIOSFODNN7EXAMPLE " + b"*" * 10 + b"\n", "v2 masks only its own pattern"
    assert counts == {"custom": 1}


def test_the_marker_names_patterns_and_counts_never_text() -> None:
    assert describe({"github-token": 1, "aws-access-key-id": 2}) == (  # type: ignore[arg-type]
        "redacted 3 secrets: aws-access-key-id=2, github-token=1"
    )
