# The two commands a new user needs (README.md):
#   make run    set up, then run the main job on the bundled example
#   make test   set up, then run the whole test suite
# Both create .venv on first use and install cdsl into it (editable).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SPEC   ?= examples/mlp.cdsl
RUN    ?= runs/digits_mlp

.PHONY: run test setup clean

$(BIN)/cdsl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned to the CPU build (2.13.0); see README "Install".
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/cdsl

run: setup
	$(BIN)/cdsl run $(SPEC) -o $(RUN)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
