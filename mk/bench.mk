.PHONY: bench
bench: install ## Benchmarks (not written yet: this target only says so)
	@echo "bench: the benchmark is not written yet"; exit 1
