# The whole set-up: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench docs test-docs lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/scoredae demo --out outputs --jobs 2 --max-memory 3

# two test workers, one thread each: small tensors gain little from a second thread
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist worksteal

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

docs: $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	MPLBACKEND=Agg $(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# the built site in headless Chromium (Debian's chromium, installed when missing)
test-docs: docs
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) docs/check_site.py

lint: $(STAMP)
	$(VENV)/bin/ruff check scoredae tests demos benchmarks

clean:
	rm -rf outputs docs/_build .pytest_cache
