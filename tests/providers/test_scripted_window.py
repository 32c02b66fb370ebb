"""The scripted provider's context window, set by the script's object form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koda.providers.scripted import ScriptedProvider, ScriptError


def test_the_window_defaults_to_200k_and_a_script_may_set_it(tmp_path: Path) -> None:
    plain = ScriptedProvider.from_script(json.dumps([{"text": "hi"}]))
    assert plain.capabilities("scripted").context_window == 200_000
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"context_window": 4_000_000, "responses": [{"text": "hi"}]}))
    wide = ScriptedProvider.from_script(str(script))
    assert wide.capabilities("scripted").context_window == 4_000_000


@pytest.mark.parametrize("window", [0, 100, "big", True, 1.5])
def test_a_bad_window_is_a_clear_error(window: object) -> None:
    with pytest.raises(ScriptError, match="context_window must be a whole number"):
        ScriptedProvider.from_script(json.dumps({"context_window": window, "responses": []}))
