# One entry point for every job; `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: help setup system-packages lock data lab all test test-unit test-notebooks notebooks report \
	readme bench lint mutation postgres postgres-stop clean

help:
	@echo "make setup          install the Debian packages needed (LaTeX, PostgreSQL) when"
	@echo "                    missing, create .venv from requirements.lock (about 2.9 GB)"
	@echo "make data           fetch CIFAR-10 (checked against its MD5) when missing; say"
	@echo "                    where FER2013 goes (it needs a Kaggle account)"
	@echo "make lock           re-resolve requirements.lock (UPGRADE=1: newest allowed versions)"
	@echo "make lab            JupyterLab on the notebooks (root or not, container or not);"
	@echo "                    LAB_ARGS='--port 8890 --no-browser' sets port, token, browser"
	@echo "make all            set up, re-run every notebook (full profile, 2 to 3.5 hours),"
	@echo "                    build the report and refresh the README's results"
	@echo "make test           set up; lint, unit tests, smoke notebooks (nbval), report"
	@echo "make test-unit      the unit tests only"
	@echo "make test-notebooks the smoke profile of every notebook under nbval"
	@echo "make lint           ruff"
	@echo "make notebooks      re-run the notebooks with papermill (PROFILE=smoke|full)"
	@echo "make report         build report/report.pdf with latexmk"
	@echo "make readme         refresh the README's results and speed tables"
	@echo "make bench          nnlib vs Keras training throughput (refreshes the README)"
	@echo "make mutation       mutation testing with mutmut, a score per module (slow: hours)"
	@echo "make postgres       start a local PostgreSQL for distributed searches; prints its URL"
	@echo "make postgres-stop  stop it (this checkout's server only)"
	@echo "make clean          remove caches and LaTeX by-products"

# the tested versions of every dependency (requirements.lock), then nnlib itself
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

setup: system-packages $(VENV)/.installed

system-packages:
	@bash scripts/system_packages.sh

# requirements.lock: pyproject.toml's dependencies (all extras) resolved for Linux and
# Python 3.11, preferring the versions installed in .venv (the tested ones)
LOCK_PYTHON := 3.11.5
lock: $(VENV)/.installed
	$(VENV)/bin/pip install -q "uv>=0.4"
	$(VENV)/bin/pip freeze --exclude-editable > .cache-installed.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra all --no-annotate --custom-compile-command "make lock" \
	  --python-version $(LOCK_PYTHON) --python-platform x86_64-unknown-linux-gnu \
	  $(if $(UPGRADE),--upgrade,-c .cache-installed.txt) -o requirements.lock
	rm -f .cache-installed.txt

# the data sets: $$NNLIB_DATA, else ../shared/datasets when it exists, else ./data
data: setup
	@$(PY) -m nnlib.download

# --allow-root: a container or a fresh machine often runs as root, which Lab refuses;
# no news feed or update check (a pop-up that asks to reach the internet)
LAB_ARGS ?=
lab: setup
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@cp scripts/lab_overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) \
	  --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	  $(LAB_ARGS)

all: setup data
	$(MAKE) notebooks PROFILE=full
	$(MAKE) report
	$(MAKE) readme

readme: setup
	$(PY) scripts/update_readme.py

test: setup data lint test-unit test-notebooks report

lint: setup
	$(VENV)/bin/ruff check .

test-unit: setup
	$(PY) -m pytest -q tests

test-notebooks: setup
	NNLIB_PROFILE=smoke $(PY) -m pytest -q --nbval-lax --nbval-current-env notebooks/

PROFILE ?= full
notebooks: setup
	$(PY) -m nnlib.pipeline --profile $(PROFILE)

# the PDF's dates and ID come from the last commit of its sources, so that a rebuild of
# unchanged sources gives the same bytes (and leaves git status clean)
REPORT_INPUTS := report/main.tex report/sections report/generated report/refs.bib figures
report:
	@cd report && SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct -- $(addprefix ../,$(REPORT_INPUTS)) \
	  2>/dev/null || echo 0) FORCE_SOURCE_DATE=1 \
	  latexmk -g -pdf -silent -interaction=nonstopmode -halt-on-error -jobname=report main.tex \
	  >report.latexmk.log 2>&1 || { tail -n 40 report.latexmk.log; \
	  echo "report/report.latexmk.log: LaTeX failed (the last lines above)"; exit 1; }
	@if grep -nE "undefined|Overfull|File .* not found" report/report.log; then \
	  echo "report/report.log: undefined references or citations, missing files or overfull boxes (above)"; exit 1; fi

bench: setup
	$(PY) benchmarks/bench_mlp.py --json benchmarks/results.json
	$(PY) scripts/update_readme.py

# mutmut copies the project into mutants/ and runs the core tests against each mutant
mutation: setup
	$(VENV)/bin/pip install -q "mutmut>=3.3,<4"
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $$(nproc) > runs/mutmut.log 2>&1 || true
	$(VENV)/bin/mutmut results --all true > runs/mutmut-results.txt || true
	$(PY) scripts/mutation_score.py runs/mutmut-results.txt

postgres:
	@bash scripts/postgres.sh start

postgres-stop:
	@bash scripts/postgres.sh stop

clean:
	rm -rf mutants .cache report/*.latexmk.log report/*.aux report/*.log report/*.fls report/*.fdb_latexmk report/*.bbl report/*.blg
