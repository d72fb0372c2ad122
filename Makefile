# One entry point for every job; `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export NNLIB_DATA ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),$(abspath data))

.PHONY: help setup all test test-unit test-notebooks notebooks report readme bench lint clean

help:
	@echo "make all       set up, re-run every notebook (full profile) and build the report"
	@echo "make test      set up, run the unit tests and the smoke notebooks (nbval)"
	@echo "make notebooks re-run the notebooks with papermill (PROFILE=smoke|full)"
	@echo "make report    build report/report.pdf with latexmk"
	@echo "make bench     nnlib vs Keras training throughput"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[all]"
	touch $@

setup: $(VENV)/.installed

all: setup
	$(MAKE) notebooks PROFILE=full
	$(MAKE) report
	$(MAKE) readme

readme: setup
	$(PY) scripts/update_readme.py

test: setup lint test-unit test-notebooks report

lint: setup
	$(VENV)/bin/ruff check .

test-unit: setup
	$(PY) -m pytest -q tests

test-notebooks: setup
	NNLIB_PROFILE=smoke $(PY) -m pytest -q --nbval-lax --nbval-current-env notebooks/

PROFILE ?= full
notebooks: setup
	$(PY) -m nnlib.pipeline --profile $(PROFILE)

report:
	cd report && latexmk -g -pdf -interaction=nonstopmode -halt-on-error -jobname=report main.tex
	@if grep -nE "undefined|Overfull|File .* not found" report/report.log; then \
	  echo "report/report.log: undefined references or citations, missing files or overfull boxes (above)"; exit 1; fi

bench: setup
	$(PY) benchmarks/bench_mlp.py --json benchmarks/results.json
	$(PY) scripts/update_readme.py

clean:
	rm -rf .cache report/*.aux report/*.log report/*.fls report/*.fdb_latexmk report/*.bbl report/*.blg
