# Shortcuts for the README's commands. Each target sets up .venv itself.
PYTHON ?= python3
VENV := .venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

.PHONY: demo test bench check clean
demo: $(VENV)/.installed   ## plan the bundled vFirewall example
	$(VENV)/bin/ordo check -C examples/vfw
	$(VENV)/bin/ordo plan -C examples/vfw

test: $(VENV)/.installed   ## run the test suite
	$(VENV)/bin/pytest

bench: $(VENV)/.installed  ## planner benchmark against Fast Downward (minutes)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(VENV)/bin/python benchmarks/bench_plan.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
