"""The service around the pure `selector` core: Kafka wiring, Redis, metrics, commands."""
