"""`creative-select replay`: backfill outcome events from files or topics.

- `inputs`: what is replayed (JSON Lines files, plain or gzip; a topic's offset range,
  dead letters unwrapped), as positioned items, each checked by the agents' decoder.
- `ranges`: `--start-offset/--end-offset` and `--since/--until` to per-partition ranges.
- `existing`: the index of event ids already in the target topics, so a replay skips
  what is there (the guard against double counts beyond the Redis dedup TTL).
- `progress`: the checkpoint (what is acknowledged, written atomically) and the tally.
- `run`: survey (dry run), then publish with acks, pacing and checkpoints.
"""
