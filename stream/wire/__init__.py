"""Wire formats: message types, decoding with its checks, encoders, failure reasons,
envelopes, corrections and the stats ledger's codec. No Kafka, Redis or Faust here."""
