#!/usr/bin/env bash
# Makes sure the VersityGW S3 server (Apache-2.0) that the adapters/store
# tests run against is built, and prints its path. The binary is cached in
# ${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}/bin, so only the first run
# builds it (a few minutes; needs Go and the module proxy).
#
#   export SWITCHYARD_VERSITYGW=$(./scripts/versitygw.sh)
set -euo pipefail
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "versitygw.sh: Go is not installed (https://go.dev/dl)" >&2; exit 1; }

version=v1.8.0
bin="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}/bin"
exe="$bin/versitygw"
stamp="$bin/versitygw.version"

if [ -x "$exe" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
	echo "$exe"
	exit 0
fi
mkdir -p "$bin"
echo "versitygw.sh: building versitygw $version into $bin (once)" >&2
GOBIN="$bin" go install "github.com/versity/versitygw/cmd/versitygw@$version" >&2
echo "$version" >"$stamp"
echo "$exe"
