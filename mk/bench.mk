# Benchmarks (issue 6): monitor throughput against Evidently per batch, agreement with Evidently, the cost of
# a retrain cycle, and quality under drift. Writes docs/benchmarks.md; takes about 10-15 minutes on 2 cores.
# Starts its own Postgres, moto S3 and MLflow server on free ports, and removes them afterwards.
#
#   make bench                        # everything
#   make bench BENCH_ARGS=--quick     # a smoke run (small sizes), written to the temp folder
#   make bench BENCH_ARGS="--sections 1,2"

BENCH_ARGS ?=

.PHONY: bench
bench: install ## Run the benchmarks and write docs/benchmarks.md (4 to 9 minutes on 2 cores)
	BENCH_VIA_MAKE=1 $(PY) -m benchmarks.run $(BENCH_ARGS)
