"""Send-time optimization outside the pure core: plots and the simulate command.

The Kafka wiring (a `send_time_request.v1` topic, the slot-count ingestion and the
daily reconciliation) comes later; everything it calls lives in `selector.sendtime`.
"""
