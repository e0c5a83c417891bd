# The two commands a fresh machine needs:
#   make up     start the cloud (gureum up) — pass options with ARGS="--hosts 3"
#   make test   run the whole test suite
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: up test lint bench clean-venv

$(STAMP): pyproject.toml
	scripts/bootstrap

up: $(STAMP)
	$(VENV)/bin/gureum up $(ARGS)

test: $(STAMP)
	scripts/test $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check gureum tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(VENV)/bin/python -m bench.identity $(ARGS)

clean-venv:
	rm -rf $(VENV)
