"""One module per agent; found by the app's autodiscovery."""
