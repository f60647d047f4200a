"""The work of each agent as plain classes over small store protocols: selection,
ingestion, the catalog, attribution. No Kafka, Redis or Faust here."""
