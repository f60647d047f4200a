"""The wire contract: one JSON Schema per topic message (`<kind>.v1.schema.json`, with
examples under `examples/`), the scenario schema, and `topics.yaml`.

Installed as the package `stream.schemas` (see pyproject.toml), so an installed command
reads them with `importlib.resources`, never from a checkout.
"""
