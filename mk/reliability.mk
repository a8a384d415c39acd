# The reliability suite: bad input, injected faults (Postgres, MLflow and S3 failures, killed and concurrent
# monitors) and the security checks. `make test` runs it too; this target runs it alone. See docs/reliability.md.
.PHONY: test-reliability
test-reliability: install ## Bad input, fault injection, restarts, concurrent runs and security (tests/reliability)
	$(VENV)/bin/pytest tests/reliability
