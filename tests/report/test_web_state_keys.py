"""The browser verifier reads its state keys from ``web/state_keys.js``, generated from the
prefixes the modules declare: this fails when the committed file is stale, and when a key the
Python verifier builds is not the one the module's state map writes."""

from pathlib import Path

from blokauto.docgen import STATE_KEYS_JS, state_keys_js
from blokauto.modules.governance.state import CONSENSUS
from blokauto.modules.parts.state import BOMS, PARTS
from blokauto.modules.recalls.state import CAMPAIGNS, OPEN, REMEDIES
from blokauto.modules.vehicles.state import VEHICLES
from blokauto.report.html import VERIFIER_SCRIPTS, verifier_script
from blokauto.verify import _keys


def test_the_generated_state_keys_file_is_current() -> None:
    assert STATE_KEYS_JS.read_text() == state_keys_js(), (
        "src/blokauto/web/state_keys.js is stale; run: python -m blokauto.docgen docs/reference")


def test_the_verifier_builds_the_keys_the_modules_write() -> None:
    assert _keys.vehicle_key("WVWZZZ1JZXW000001").encode() == VEHICLES.key("WVWZZZ1JZXW000001")
    assert _keys.campaign_key(42).encode() == CAMPAIGNS.key(42)
    assert _keys.remedy_key(42, "WVWZZZ1JZXW000001").encode() == REMEDIES.key(42, "WVWZZZ1JZXW000001")
    assert _keys.bom_key("WVWZZZ1JZXW000001").encode() == BOMS.key("WVWZZZ1JZXW000001")
    assert _keys.part_key("BAT-1:SN9").encode() == PARTS.key("BAT-1:SN9")
    assert _keys.OPEN_CAMPAIGNS_KEY.encode() == OPEN.key
    assert _keys.CONSENSUS_KEY == CONSENSUS.key


def test_pages_load_the_state_keys_before_the_verifier() -> None:
    script = verifier_script()
    assert VERIFIER_SCRIPTS[0] == "state_keys.js"
    assert script.index("root.BlokautoStateKeys = keys") < script.index("root.BlokautoVerifier = api")


def test_the_browser_verifier_repeats_no_state_key() -> None:
    js = (Path(STATE_KEYS_JS).parent / "verifier.js").read_text()
    for prefix in ("veh/", "parts/", "recall/", "gov/"):
        assert f'"{prefix}' not in js and f"`{prefix}" not in js, prefix
