# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
# Both create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MESSAGES ?= 10000

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

.PHONY: install demo test lint clean
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m smsfunnel demo --messages $(MESSAGES)

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	-$(PY) -m smsfunnel kafka stop
	rm -rf .smsfunnel
