# Benchmarks (DESIGN.md section 6) go through the CLI, like everything else.
PYTHON ?= python3

.PHONY: bench bench-quick

bench:  ## selector benchmark, default run (~2-3 min); table on stdout, JSON in bench/results/
	$(PYTHON) -m stream.cli bench selector

bench-quick:  ## CI smoke run of the selector benchmark (< 30 s)
	$(PYTHON) -m stream.cli bench selector --quick
