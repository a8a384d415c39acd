# The lock files: every package pinned with its hashes, for Linux x86_64 and Python 3.11 (see README, Install).
#
#   make lock            # re-lock after editing pyproject.toml's dependencies (the pinned versions are kept)
#   make lock UPGRADE=1  # move every package to the newest version its range allows
#
# requirements/dev.lock: the runtime dependencies and the stack, dev and spark extras (`make install`).
# requirements/runtime.lock: the runtime dependencies and requirements/host.in (what the AWS host installs),
# constrained to dev.lock's versions so both name the same ones. uv resolves them, from its own venv in
# .tools/uv, apart from .venv: it is no dependency of the project.

UV_VERSION ?= 0.13.9
UV_VENV := .tools/uv
UV_STAMP := $(UV_VENV)/.installed-$(UV_VERSION)
UV := $(UV_VENV)/bin/uv
UPGRADE ?=
LOCK_ARGS = --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock" $(if $(filter 1 yes true,$(UPGRADE)),--upgrade)

.PHONY: lock tools-uv

lock: tools-uv ## Re-lock requirements/*.lock from pyproject.toml (with hashes; UPGRADE=1 for the newest versions)
	$(UV) pip compile pyproject.toml --extra stack --extra dev --extra spark $(LOCK_ARGS) -o requirements/dev.lock
	$(UV) pip compile pyproject.toml requirements/host.in -c requirements/dev.lock $(LOCK_ARGS) \
		-o requirements/runtime.lock

tools-uv: $(UV_STAMP) ## Install the pinned uv into .tools/uv, apart from .venv

$(UV_STAMP):
	rm -rf $(UV_VENV)
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	touch $@
