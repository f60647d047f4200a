"""The outside world: Kafka configuration, producers and topic specs, the fast Kafka
reader, the Redis store, pacing, and catalog and event files."""
