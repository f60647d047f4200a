"""Settings from the environment: choices are checked where they are read."""

from __future__ import annotations

import pytest

from stream.settings import Settings, SettingsError


def test_sendtime_learning_takes_one_of_three_values() -> None:
    assert Settings.from_env({}).sendtime_learning == "all"
    for value in ("all", "declared", "off"):
        assert Settings.from_env({"CS_SENDTIME_LEARNING": value}).sendtime_learning == value
    with pytest.raises(SettingsError, match="CS_SENDTIME_LEARNING"):
        Settings.from_env({"CS_SENDTIME_LEARNING": "some"})
