"""Settings are declared as data, documented, and loaded with the right precedence."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from tracelake.settings import SETTINGS, Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_every_setting_is_a_field_with_the_declared_default():
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for spec in SETTINGS:
        assert spec.name in fields, spec.name
        assert getattr(Settings(), spec.name) == spec.default, spec.name
        assert spec.help.strip(), f"{spec.name} has no help text"


def test_every_setting_is_documented():
    text = DOC.read_text()
    missing = [s.env_var for s in SETTINGS if f"`{s.env_var}`" not in text]
    assert missing == [], f"undocumented in docs/settings.md: {missing}"


def test_argument_beats_environment_beats_default():
    env = {"TRACELAKE_PORT": "6000", "TRACELAKE_HOST": "127.0.0.2"}
    loaded = Settings.load({"port": 7000, "host": None}, environ=env)
    assert loaded.port == 7000
    assert loaded.host == "127.0.0.2"
    assert Settings.load({}, environ={}).port == 5000
