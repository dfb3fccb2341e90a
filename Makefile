# Every target sets up its own virtualenv from pyproject.toml; nothing else is needed beyond python3 and,
# for the real Kubernetes programs built once by `kube-tools`, Go 1.26 with the Go module proxy.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit bench bench-quick crds clean kube-tools

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# etcd, kube-apiserver and kubectl of Kubernetes v1.37.2, built from source once into a cache outside the
# repository (the last line printed); set KUBEBUILDER_ASSETS to use programs of your own instead.
kube-tools:
	@if [ -n "$$KUBEBUILDER_ASSETS" ]; then echo "$$KUBEBUILDER_ASSETS"; else kube-tools/build.sh; fi

run: $(STAMP) kube-tools
	$(BIN)/trailkeeper sandbox

test: lint kube-tools unit

LINTED := operator tests $(wildcard bench)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

unit: $(STAMP) kube-tools
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

# trailkeeper audit beside Prowler's checks of the same CIS controls, on moto scenarios (about 7 minutes;
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
