"""Observability: every metric, Faust's sensors, consumer lag, decision exposure."""
