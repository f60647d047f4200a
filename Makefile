# Benchmarks (DESIGN.md section 6) go through the CLI, like everything else.
PYTHON ?= python3

<<<<<<< HEAD
.PHONY: bench-peers bench-single bench bench-quick bench-stream bench-stream-quick bench-recompute bench-recompute-quick bench-report bench-report-quick
=======
.PHONY: bench-model bench-model-quick bench-peers bench-single bench bench-quick bench-stream bench-stream-quick bench-recompute bench-recompute-quick
>>>>>>> origin/main

bench:  ## selector benchmark, default run (~2-3 min); table on stdout, JSON in bench/results/
	$(PYTHON) -m bench selector

bench-quick:  ## CI smoke run of the selector benchmark (< 30 s)
	$(PYTHON) -m bench selector --quick

bench-stream:  ## through Kafka with one worker (~5 min): selections/s, latency, stats events/s
	$(PYTHON) -m bench stream

bench-stream-quick:  ## smoke run of the stream benchmark (~30-60 s)
	$(PYTHON) -m bench stream --quick

bench-recompute:  ## daily job's recomputation over 10 million events on a local Kafka (~5 min)
	$(PYTHON) -m bench recompute --events 10000000

bench-recompute-quick:  ## the same on 200,000 events (~30 s)
	$(PYTHON) -m bench recompute --quick

bench-report:  ## live report over 10 million responses and events, decoded and raw (~6 min)
	$(PYTHON) -m bench report

bench-report-quick:  ## the same on 200,000 records (~15 s)
	$(PYTHON) -m bench report --quick

bench-peers:  ## regret of our default policy vs MABWiser and River on one clicks stream
	$(PYTHON) -m bench peer-regret

bench-single:  ## single decide() vs the peers
	$(PYTHON) -m bench single-decide

bench-model:  ## the model method: CPU per decision, training per million events, LightGBM beside it
	$(PYTHON) -m bench model

bench-model-quick:  ## the same on a small history
	$(PYTHON) -m bench model --quick
