# Every target sets up its own virtualenv from pyproject.toml; nothing else is needed beyond python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit bench bench-quick crds clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/trailkeeper sandbox

test: lint unit

LINTED := operator tests $(wildcard bench)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

unit: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/pytest -q -m slow tests
	$(BIN)/python -m bench

# Writers racing on shared policies, lifecycle rules and trail names (about 10 minutes on 2 cores).
.PHONY: race
race: $(STAMP)
	$(BIN)/python -m bench.races --runs 50

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick --output .bench/results.json

# trailkeeper audit beside Prowler's checks of the same CIS controls, on moto scenarios (about 5 minutes;
# the first run installs Prowler into its own virtualenv under ~/.cache/trailkeeper-crosscheck).
.PHONY: crosscheck
crosscheck: $(STAMP)
	$(BIN)/python -m bench.crosscheck

# The CRDs are generated from the models; the chart and deploy/ carry byte-equal copies.
crds: $(STAMP)
	$(BIN)/trailkeeper crds --output-dir crds
	$(BIN)/trailkeeper crds --output-dir charts/trailkeeper/crds
	$(BIN)/trailkeeper crds --output-dir deploy/crds

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
