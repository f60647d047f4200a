"""An account's settings in their wire form (`account_settings.v1`'s `settings`)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from selector.custom_fields import fields_to_dicts
from selector.domain import SelectionSettings


def settings_form(settings: SelectionSettings) -> dict[str, Any]:
    """The settings' fields (orjson writes the nested domain values), with the custom
    fields as their declarations, and left out when there are none."""
    body = {f.name: getattr(settings, f.name) for f in fields(settings)}
    declared = body.pop("custom_fields")
    if declared:
        body["custom_fields"] = fields_to_dicts(declared)
    return body
