"""The error every loader raises for a value it cannot use (`selector.domain` re-exports
it): a catalog, a settings document, a scenario."""

from __future__ import annotations


class ConfigError(ValueError):
    """A catalog or settings value that cannot be used; `path` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
