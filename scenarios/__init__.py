"""Worked simulation scenarios; installed as the package `stream.scenarios`, so the demo's
default scenario is there in any install."""
