# retention-study: `make report` and `make test` are all a new user needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := retention-study
CONFIG ?= configs/default.yaml
SAMPLE := data/raw/sample/customers.csv
SAMPLE_CUSTOMERS ?= 3000
SAMPLE_SEED ?= 20260630

.DEFAULT_GOAL := help
.PHONY: help setup setup-spark report sample test lint lab bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv/, install the package and register the Jupyter kernel

# Re-install only when the dependency list changes, so `setup` is fast when done.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name $(KERNEL) --display-name "Python (retention-study)" >/dev/null
	@touch $(STAMP)

# Optional: the Spark engine (study.engine: spark) needs pyspark and a Java runtime.
# Explicit only: `make test` never installs them (the Spark tests skip and say why).
setup-spark: setup ## add pyspark (the [spark] extra) and a Java 17 runtime (apt-get, as root)
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update && apt-get install -y openjdk-17-jre-headless; \
	  else \
	    echo "setup-spark: no Java on PATH; install a Java 17 runtime (Debian: openjdk-17-jre-headless)"; exit 1; \
	  fi; }
	@java -version 2>&1 | head -1

sample: setup ## generate the built-in simulated sample data if missing
	@test -f $(SAMPLE) || $(BIN)/retention-study simulate --out data/raw/sample --customers $(SAMPLE_CUSTOMERS) --seed $(SAMPLE_SEED) --preset contact

report: sample ## run the study on the sample data into reports/ (CONFIG=... for another)
	$(BIN)/retention-study run $(CONFIG)

test: setup ## lint, then the test suite on every core (unit tests and every notebook on small data)
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/python -m pytest -q -n auto

lint: setup ## ruff on code and notebooks
	$(BIN)/ruff check src tests benchmarks notebooks

lab: sample ## open the notebooks in JupyterLab (sample data made if missing)
	$(BIN)/jupyter lab notebooks/

bench: setup ## run the benchmark scripts (slow; prints their figures)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean: ## remove .venv/ and generated sample data (reports are kept)
	rm -rf $(VENV) data/raw/sample
