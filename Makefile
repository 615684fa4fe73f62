# Trail's everyday commands. CI (.ci/run) runs make lint and make test.
#
#	make test       the tests, as the README says: go test -race ./...
#	make lint       gofmt (fails on any file it would change), go vet, staticcheck
#	make build      bin/trail, stamped with the version, commit and date (trail version)
#	make bench      trail bench on this machine; BENCH_FLAGS picks the scenarios
#	make generate   go generate ./... (nothing is generated today: the UI embeds its sources)

GO          ?= go
# staticcheck, pinned: go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo "$$($(GO) env GOPATH)/bin/staticcheck")
BIN         ?= bin/trail

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.Version=$(VERSION) -X main.Commit=$(COMMIT) -X main.Date=$(DATE)

# The defaults of trail bench; see BENCHMARKS.md for the others, and add
# --drivers sqlite,postgres --database-url postgres://… for PostgreSQL.
BENCH_FLAGS ?= --scenarios single,batch,lag,query

.PHONY: test lint build bench generate

test:
	$(GO) test -race ./...

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/trail

bench: build
	./$(BIN) bench $(BENCH_FLAGS)

generate:
	$(GO) generate ./...
