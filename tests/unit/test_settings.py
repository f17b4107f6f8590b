"""Settings: a typo in the file stops startup with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.errors import BadRequest
from gateway.settings import load_settings


def test_typo_in_settings_file_names_the_field(tmp_path: Path) -> None:
    f = tmp_path / "rcgate.yaml"
    f.write_text("http:\n  prot: 8080\nauth:\n  stepup_max_age_s: 60\n")
    with pytest.raises(BadRequest) as err:
        load_settings(f)
    assert "http.prot: unknown key" in err.value.message


def test_bad_value_names_the_field(tmp_path: Path) -> None:
    f = tmp_path / "rcgate.yaml"
    f.write_text("http:\n  port: eighty\n")
    with pytest.raises(BadRequest) as err:
        load_settings(f)
    assert "http.port" in err.value.message


def test_not_a_mapping_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "rcgate.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(BadRequest, match="mapping"):
        load_settings(f)


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCGATE_AUTH__STEPUP_MAX_AGE_S", "42")
    assert load_settings(None).auth.stepup_max_age_s == 42


def test_public_url_defines_rp_id_and_origins() -> None:
    s = load_settings(None, **{"http.public_url": "https://gw.example.com"})
    assert s.rp_id == "gw.example.com" and s.origins == ("https://gw.example.com",)
