# The two commands of the quick start: `make demo` and `make test`.
# Each creates .venv with the machine's python3 and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

# Every backend (the [all] extra) and the dev tools (the PEP 735 group `dev`). pip reads
# dependency groups from 25.1 on: pip is upgraded first, and where it cannot be (no index),
# the group's requirements are read from pyproject.toml and installed as a plain list.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip || true
	if $(BIN)/python -m pip install --help | grep -q -- '--group'; then \
	  $(BIN)/python -m pip install --quiet -e '.[all]' --group dev; \
	else \
	  $(BIN)/python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['dependency-groups']['dev']))" > $(VENV)/dev-group.txt && \
	  $(BIN)/python -m pip install --quiet -e '.[all]' -r $(VENV)/dev-group.txt; \
	fi
	touch $(STAMP)

# The example shop's fleet, a simulated crowd, failures and a report; the shop stays up
# until Ctrl-C (make demo DEMO_ARGS=--once exits after the report).
demo: $(STAMP)
	cd examples && ../$(BIN)/python -m shop demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy  # the files pyproject.toml names: src and examples

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
