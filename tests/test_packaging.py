"""pyproject.toml lists every package (setuptools is told the list, so that the schemas
and scenarios can ship from the top of the checkout as `stream.schemas` and
`stream.scenarios`); a package missing from it would be missing from the wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_of_the_source_is_listed() -> None:
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("selector", "stream")
        for p in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in p.parts and not p.parent.is_symlink()
    }
    listed = set(CONFIG["packages"]) - set(CONFIG["package-dir"])
    assert listed == found


def test_mapped_packages_are_the_contract_folders_with_their_data() -> None:
    assert CONFIG["package-dir"] == {"stream.schemas": "schemas", "stream.scenarios": "scenarios"}
    for package, folder in CONFIG["package-dir"].items():
        assert package in CONFIG["packages"]
        assert (ROOT / folder / "__init__.py").is_file()
    assert (ROOT / "stream" / "local" / "kafka-pom.xml").is_file()
