"""The examples in the modules' docstrings run (the README's run in test_readme.py)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import selector
import stream

# Importing the worker's modules builds the Faust app and registers agents; they hold no
# examples, and the worker is tested on a real broker instead.
SKIPPED = ("stream.worker", "stream.local.__main__")


def modules_with_examples() -> list[str]:
    found = []
    finder = doctest.DocTestFinder()
    for package in (selector, stream):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.startswith(SKIPPED) or info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            examples = [e for t in finder.find(module) for e in t.examples]
            if any(not e.options.get(doctest.SKIP) for e in examples):
                found.append(info.name)
    return found


MODULES = modules_with_examples()


def test_there_are_examples_to_run() -> None:
    assert {"selector.decide", "stream.wire.codec", "stream.adapters.kafka_config"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_of_a_module_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
