#!/usr/bin/env bash
# Runs every check of the project: formatting, vet, a build for macOS on
# arm64, the whole test suite with the best kernels this CPU has, and the
# engine's tests again on the pure-Go kernels. Needs only Go (found on PATH or in /usr/local/go).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "test.sh: Go is not installed (https://go.dev/dl)" >&2; exit 1; }

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# Another system's build (not Linux, not amd64): the platform files
# (mmap, madvise, the assembly kernels) differ.
GOOS=darwin GOARCH=arm64 go build ./...
# The S3 store tests run against a real VersityGW server on 127.0.0.1,
# built once into the cache dir.
export SWITCHYARD_VERSITYGW="$(./scripts/versitygw.sh)"
go test -count=1 ./...
# The same model and engine tests with the plain Go kernels, so the
# reference path stays correct too.
SWITCHYARD_KERNELS=go go test -count=1 ./kernels/... ./model/... ./lora/... ./engine/... ./cmd/...
