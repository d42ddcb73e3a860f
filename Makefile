# Set-up is two commands: `make run` and `make test`. Both install what they need
# on a fresh Debian machine (as root): dcmtk, Orthanc, GDCM's tools, graphviz and
# PostgreSQL (the tests start a throwaway cluster of their own) via apt-get, and the
# Python environment in .venv.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 11112
AET    ?= DIMSEFSM
STORE  ?= dicom-store
# More qrscp flags for `make run`, e.g. QRSCP_ARGS="--dest STORESCP=127.0.0.1:11113 --worklist wl"
QRSCP_ARGS ?=
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

APT_PACKAGES := dcmtk orthanc libgdcm-tools graphviz postgresql

.PHONY: all system venv run test unit lint docs statecharts bench clean

all: test

system:
	@missing=""; \
	command -v echoscu >/dev/null 2>&1 || missing="$$missing dcmtk"; \
	command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ] || missing="$$missing orthanc"; \
	command -v gdcmscu >/dev/null 2>&1 || missing="$$missing libgdcm-tools"; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
	  || missing="$$missing postgresql"; \
	python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv python3-pip"; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dimsefsm qrscp $(PORT) -aet $(AET) -od $(STORE) -v $(QRSCP_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks docs/conf.py docs/_ext
	$(VENV)/bin/ruff format --check src tests benchmarks docs/conf.py docs/_ext
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The Sphinx site in docs/_build/html: warnings are errors, every internal link and
# anchor must resolve (offline; the examples themselves run in tests/unit/test_docs_examples.py).
docs: $(STAMP) system
	$(VENV)/bin/sphinx-build -q -W --keep-going -b html docs docs/_build/html
	$(PY) docs/_ext/check_links.py docs/_build/html

unit: $(STAMP)
	$(VENV)/bin/pytest -m "not interop"

test: $(STAMP) system
	@$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest --chart-gate=100 --chart-counts docs/_build/chart-counts.json
	@$(MAKE) --no-print-directory docs

statecharts: $(STAMP)
	$(PY) -m dimsefsm.fsm.render statecharts
	$(PY) -m dimsefsm.conformance docs/conformance.md

bench: $(STAMP) system
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build docs/_build *.egg-info .pytest_cache .mypy_cache .ruff_cache bench-results
