# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
# Both create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MESSAGES ?= 10000
# The compiled click redirector (producers/redirector_go). Go is taken from PATH; where there is
# none, the pinned toolchain is fetched from the Go module proxy (golang.org/toolchain), as
# `go` itself does with GOTOOLCHAIN.
GO_VERSION := 1.26.8
LOCAL_GO := $(CURDIR)/.smsfunnel/go/bin/go
GO ?= $(shell command -v go 2>/dev/null || echo $(LOCAL_GO))
REDIRECTOR := .smsfunnel/bin/smsfunnel-redirector
REDIRECTOR_SRC := $(wildcard producers/redirector_go/*.go) producers/redirector_go/go.mod producers/redirector_go/go.sum

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(LOCAL_GO):
	mkdir -p .smsfunnel
	curl -sSfL -o .smsfunnel/go.zip \
	  https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$(GO_VERSION).linux-amd64.zip
	rm -rf .smsfunnel/go .smsfunnel/go-unzip
	$(PYTHON) -m zipfile -e .smsfunnel/go.zip .smsfunnel/go-unzip
	mv .smsfunnel/go-unzip/golang.org/toolchain@v0.0.1-go$(GO_VERSION).linux-amd64 .smsfunnel/go
	rm -rf .smsfunnel/go.zip .smsfunnel/go-unzip
	chmod +x .smsfunnel/go/bin/* .smsfunnel/go/pkg/tool/*/*

$(REDIRECTOR): $(REDIRECTOR_SRC) | $(if $(filter $(LOCAL_GO),$(GO)),$(LOCAL_GO))
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
	test -z "$$($(dir $(GO))gofmt -l producers/redirector_go)"

clean:
	-$(PY) -m smsfunnel kafka stop
	rm -rf .smsfunnel
