"""The replay page's static assets: the player's emulator as JS matches the vendored player, the
scripts load in the order the CSP shim needs, and the workbench's scripts never write HTML."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
BUNDLE = WEB / "node_modules/asciinema-player/dist/bundle/asciinema-player.min.js"
PLAYER_VT = WEB / "static/js/player-vt.js"
WORKBENCH_JS = ["recordings.js", "replay.js", "recordings-common.js", "player-csp.js"]


def meta() -> dict[str, object]:
    m = re.search(r"meta: Object\.freeze\((\{.*?\})\)", PLAYER_VT.read_text())
    assert m is not None, "player-vt.js has no meta: regenerate it with scripts/gen_player_vt.py"
    data: dict[str, object] = json.loads(m.group(1))
    return data


@pytest.mark.skipif(not BUNDLE.exists(), reason="web/node_modules not installed (make web)")
def test_generated_emulator_matches_the_vendored_player() -> None:
    found = re.findall(r'"(AGFzbQ[A-Za-z0-9+/=]+)"', BUNDLE.read_text())
    assert len(found) == 1
    wasm = base64.b64decode(found[0])
    version = json.loads((WEB / "node_modules/asciinema-player/package.json").read_text())["version"]
    m = meta()
    expected = (version, len(wasm), hashlib.sha256(wasm).hexdigest())
    assert (m["player"], m["length"], m["sha256"]) == expected, (
        "asciinema-player changed: run `.venv/bin/python scripts/gen_player_vt.py` (needs binaryen)"
    )


def test_replay_page_loads_emulator_shim_player_in_order() -> None:
    html = (WEB / "replay.html").read_text()
    scripts = re.findall(r'<script[^>]* src="([^"]+)"', html)
    assert scripts == [
        "/static/js/player-vt.js",
        "/static/js/player-csp.js",
        "/vendor/asciinema-player/asciinema-player.min.js",
        "/static/js/replay.js",
    ]
    assert "<script>" not in html and "style=" not in html


@pytest.mark.parametrize("name", WORKBENCH_JS)
def test_workbench_scripts_never_write_html(name: str) -> None:
    text = (WEB / "static/js" / name).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in text, f"{name} uses {sink}"
