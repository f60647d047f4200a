"""Checks of plain documents (scenarios, settings) that fail with a `ConfigError` naming the
field, shared by every loader so that the same mistake reads the same everywhere.

Examples
--------
>>> number(2.5, "horizon.days", 0)
2.5
>>> count(0, "contacts")
Traceback (most recent call last):
...
selector.errors.ConfigError: contacts: must be a whole number >= 1; got 0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from selector.domain import ConfigError


def require(ok: bool, path: str, message: str) -> None:
    """Raise `ConfigError(path, message)` unless `ok`."""
    if not ok:
        raise ConfigError(path, message)


def mapping(data: object, path: str, allowed: set[str], what: str = "field") -> dict[str, Any]:
    """`data` as a dict, if it is a mapping whose keys are all in `allowed`."""
    require(isinstance(data, Mapping), path, f"must be an object; got {type(data).__name__}")
    assert isinstance(data, Mapping)
    unknown = sorted(map(str, set(data) - allowed))
    require(not unknown, path, f"unknown {what}(s) {', '.join(unknown)}")
    return dict(data)


def number(value: object, path: str, low: float, high: float = math.inf) -> float:
    """A finite number (not a bool) in [low, high], as a float."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    require(ok, path, f"must be a finite number; got {value!r}")
    assert isinstance(value, int | float)
    require(low <= value <= high, path, f"must be between {low:g} and {high:g}; got {value!r}")
    return float(value)


def count(value: object, path: str, low: int = 1) -> int:
    """A whole number (not a bool) >= low."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    require(ok, path, f"must be a whole number >= {low}; got {value!r}")
    assert isinstance(value, int)
    return value
