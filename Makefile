# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
# Both create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MESSAGES ?= 10000
# The compiled click redirector (producers/redirector_go) needs `go` on PATH, any release since
# 1.21: with GOTOOLCHAIN=auto it fetches the toolchain go.mod asks for from the Go module proxy
# itself.
GO ?= go
GOTOOLCHAIN ?= auto
export GOTOOLCHAIN
REDIRECTOR := .smsfunnel/bin/smsfunnel-redirector
REDIRECTOR_SRC := $(wildcard producers/redirector_go/*.go) producers/redirector_go/go.mod producers/redirector_go/go.sum

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(REDIRECTOR): $(REDIRECTOR_SRC)
	@command -v $(GO) >/dev/null || { echo "Go is needed to build the redirector: install it (https://go.dev/dl), any release since 1.21" >&2; exit 1; }
	cd producers/redirector_go && $(GO) build -trimpath -o $(CURDIR)/$(REDIRECTOR) .

.PHONY: install redirector demo test lint clean
install: $(VENV)/.installed $(REDIRECTOR)
redirector: $(REDIRECTOR)

demo: install
	$(PY) -m smsfunnel demo --messages $(MESSAGES)

# The Go redirector's own tests (the shared token vectors) first, then the suite.
test: install
	cd producers/redirector_go && $(GO) vet ./... && $(GO) test ./...
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
	test -z "$$(cd producers/redirector_go && "$$($(GO) env GOROOT)/bin/gofmt" -l .)"

clean:
	-$(PY) -m smsfunnel kafka stop
	rm -rf .smsfunnel
