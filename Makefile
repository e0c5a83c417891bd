# The two commands a fresh machine needs:
#   make up     start the cloud (gureum up) — pass options with ARGS="--hosts 3"
#   make test   run the whole test suite
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: up test lint bench bench-compute bench-qemu sdk-functional clean-venv

$(STAMP): pyproject.toml
	scripts/bootstrap

# scripts/system-packages: QEMU and the test guest's packages, installed when
# missing (quiet when they are there).
up: $(STAMP)
	@scripts/system-packages
	$(VENV)/bin/gureum up $(ARGS)

test: $(STAMP)
	@scripts/system-packages
	scripts/test $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check gureum tests bench
	$(VENV)/bin/mypy

# Identity vs upstream Keystone side by side (../shared/bench/keystone; needs wrk):
# 100,000 distinct tokens validated in random order, memory. About 30 minutes.
bench: $(STAMP)
	$(VENV)/bin/python -m bench.identity $(ARGS)

# Compute on the fake driver: boots, server list (CLI and API), claims, actions; then
# the Compute API vs upstream Nova 34 (../shared/bench/nova). ARGS="--only nova" for
# the comparison alone. Both write docs/performance.md from a committed tree only.
bench-compute: $(STAMP)
	$(VENV)/bin/python -m bench.compute $(ARGS)

# The QEMU driver with real TCG guests on `gureum up --driver qemu --hosts 2`: boot to
# ready, clean stop/start, live migration (shared and block) with QEMU's downtime,
# resize, cold migration; ARGS="--rounds N" (default 5). Writes docs/performance.md from
# a committed tree only. Runs under flock $(BENCH_LOCK): one benchmark at a time.
BENCH_LOCK ?= /work/bench.lock
bench-qemu: $(STAMP)
	flock $(BENCH_LOCK) $(VENV)/bin/python -m bench.qemu $(ARGS)

# openstacksdk's own functional tests for the Networking and Block Storage APIs against
# a fresh gureum up (fake driver); writes the counts into docs/compat.md. About a minute.
# Other areas: ARGS="identity cloud.test_identity" (see scripts/sdk-functional).
SDK_AREAS ?= network cloud.test_network block_storage cloud.test_block_storage
sdk-functional: $(STAMP)
	scripts/sdk-functional --doc $(or $(ARGS),$(SDK_AREAS))

clean-venv:
	rm -rf $(VENV)
