# Shortcuts for the README's commands. Each target sets up .venv itself.
PYTHON ?= python3
VENV := .venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

.PHONY: demo test bench check clean
demo: $(VENV)/.installed   ## plan and apply the vFirewall example: a region fails, ordo re-plans
	rm -rf .demo
	$(VENV)/bin/ordo check -C examples/vfw
	$(VENV)/bin/ordo apply -C examples/vfw --auto-approve --journal .demo/journal.db \
	    --simulation examples/vfw/simulations/region-two-refuses.yaml
	$(VENV)/bin/ordo history -C examples/vfw --journal .demo/journal.db

test: $(VENV)/.installed   ## run the test suite
	$(VENV)/bin/pytest

bench: $(VENV)/.installed  ## planner (against Fast Downward) and executor benchmarks (minutes)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(VENV)/bin/python benchmarks/bench_plan.py
	$(VENV)/bin/python benchmarks/bench_apply.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .demo
