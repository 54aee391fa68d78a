# Skiff: Kubernetes in one small binary. `make help` lists the targets.

GO       ?= go
BIN      := bin/skiff
DATA_DIR ?= /var/lib/skiff
PKGS     := ./...
export PATH := $(PATH):/usr/local/go/bin

.PHONY: help deps build run stop test test-unit test-e2e bench lint fmt clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install what building and testing need (Debian packages, Go modules)
	@scripts/deps.sh

build: ## build bin/skiff (and bin/skiff-demo, the demo app's image)
	$(GO) build -trimpath -ldflags "$$(scripts/ldflags.sh)" -o $(BIN) ./cmd/skiff
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/skiff-demo ./cmd/skiff-demo

run: deps build ## start a one-node cluster and show it working
	@DATA_DIR=$(DATA_DIR) scripts/run.sh

stop: ## stop the cluster make run started
	@DATA_DIR=$(DATA_DIR) scripts/run.sh stop

test: build ## run every test (unit, integration, end-to-end)
	SKIFF_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m $(PKGS)

test-unit: ## run the fast tests only (no servers)
	$(GO) test -count=1 -short $(PKGS)

test-e2e: build ## run the end-to-end tests only
	SKIFF_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m ./test/e2e/...

bench: build ## measure the figures quoted in docs/benchmarks.md
	$(GO) run ./test/bench -bin $(CURDIR)/$(BIN)

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

clean: ## remove build output
	rm -rf bin
