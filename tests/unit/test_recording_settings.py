"""`recordings.*` settings: retention is off unless set; env and YAML both reach it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.errors import BadRequest
from gateway.settings import load_settings


def test_retention_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RCGATE_RECORDINGS__RETAIN_DAYS", raising=False)
    assert load_settings().recordings.retain_days is None


def test_retain_days_from_the_environment_beside_recordings_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RCGATE_RECORDINGS__RETAIN_DAYS", "90")
    monkeypatch.setenv("RCGATE_RECORDINGS_DIR", str(tmp_path / "rec"))
    s = load_settings()
    assert s.recordings.retain_days == 90 and s.recordings_dir == tmp_path / "rec"


def test_retain_days_from_yaml_and_bad_values_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "rcgate.yaml"
    f.write_text("recordings:\n  retain_days: 30\n  retention_interval_s: 600\n")
    assert load_settings(f).recordings.retain_days == 30
    f.write_text("recordings:\n  retain_days: 0\n")
    with pytest.raises(BadRequest, match=r"recordings\.retain_days"):
        load_settings(f)
    f.write_text("recordings:\n  retain_dayz: 3\n")
    with pytest.raises(BadRequest, match=r"recordings\.retain_dayz: unknown key"):
        load_settings(f)
