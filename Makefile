# Trail's everyday commands. CI (.ci/run) runs make lint and make test.
#
#	make test       the tests, as the README says: go test -race ./...
#	make lint       gofmt (fails on any file it would change), go vet, staticcheck
#	make build      bin/trail, stamped with the version, commit and date (trail version)
#	make bench      trail bench on this machine; BENCH_FLAGS picks the scenarios
#	make generate   go generate ./... (nothing is generated today: the UI embeds its sources)
#	make release    dist/: static binaries for linux and darwin on amd64 and arm64, the
#	                .deb and .rpm packages, SHA256SUMS (docs/OPERATIONS.md)
#	make package    dist/: the .deb and .rpm packages only (PKG_ARCHS, default amd64 arm64)
#	make rootfs     dist/rootfs: the container image's file tree (the Dockerfile copies it)
#	make test-packages   as root: install the .deb, run it, purge it; run the image's tree in a chroot

GO          ?= go
# staticcheck, pinned: go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo "$$($(GO) env GOPATH)/bin/staticcheck")
BIN         ?= bin/trail

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.Version=$(VERSION) -X main.Commit=$(COMMIT) -X main.Date=$(DATE)

# Releases. A tagged commit (vX.Y.Z) is version X.Y.Z; any other is a
# pre-release of 0.0.0 named by its commit's time and hash, which sorts in
# time order in dpkg and rpm. The release binaries are stamped with it.
PKG_VERSION ?= $(shell v=$$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null) && echo $${v\#v} || \
	echo 0.0.0-dev.$$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S 2>/dev/null || echo 0).g$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
DIST        ?= dist
PLATFORMS   ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
PKG_ARCHS   ?= amd64 arm64
# nfpm, pinned: go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
NFPM        ?= $(shell command -v nfpm 2>/dev/null || echo "$$($(GO) env GOPATH)/bin/nfpm")
RELEASE_LDFLAGS := -s -w -X main.Version=$(PKG_VERSION) -X main.Commit=$(COMMIT) -X main.Date=$(DATE)
HOST_ARCH   ?= $(shell $(GO) env GOARCH)

# The defaults of trail bench; see BENCHMARKS.md for the others, and add
# --drivers sqlite,postgres --database-url postgres://… for PostgreSQL.
BENCH_FLAGS ?= --scenarios single,batch,lag,query

.PHONY: test lint build bench generate release binaries package rootfs test-packages

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

# Static binaries (no cgo: the SQLite driver is pure Go), one per platform:
# dist/trail_<os>_<arch>.
binaries:
	@mkdir -p $(DIST)
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "build $(DIST)/trail_$${os}_$${arch} ($(PKG_VERSION))"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(RELEASE_LDFLAGS)" \
			-o $(DIST)/trail_$${os}_$${arch} ./cmd/trail || exit 1; \
	done

# The .deb and .rpm of each of PKG_ARCHS, from their linux binaries.
package:
	@$(MAKE) --no-print-directory binaries PLATFORMS="$(foreach a,$(PKG_ARCHS),linux/$(a))"
	@for a in $(PKG_ARCHS); do \
		sed -e "s/\$${ARCH}/$$a/g" -e "s/\$${VERSION}/$(PKG_VERSION)/g" packaging/nfpm.yaml >$(DIST)/nfpm-$$a.yaml; \
		for f in deb rpm; do \
			$(NFPM) package --config $(DIST)/nfpm-$$a.yaml --packager $$f --target $(DIST)/ || exit 1; \
		done; \
	done

release:
	rm -rf $(DIST)
	@$(MAKE) --no-print-directory binaries package
	cd $(DIST) && sha256sum trail_* trail-*.rpm > SHA256SUMS && cat SHA256SUMS

# The container image's file tree, for the Dockerfile (FROM scratch).
rootfs:
	@$(MAKE) --no-print-directory binaries PLATFORMS=linux/$(HOST_ARCH)
	packaging/rootfs.sh $(DIST)/rootfs $(DIST)/trail_linux_$(HOST_ARCH)

# As root, on a Debian-like machine: install the .deb, check its unit,
# start it with its settings file, purge it; run the image's tree in a
# chroot as its user. CI runs it.
test-packages:
	@$(MAKE) --no-print-directory package PKG_ARCHS=$(HOST_ARCH)
	@$(MAKE) --no-print-directory rootfs
	packaging/test.sh $(DIST) $(HOST_ARCH)
