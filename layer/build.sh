#!/bin/sh
# Build the layer: dist/chaos-layer.zip, laid out as Lambda extracts it under /opt.
#   extensions/lambda-chaos-extension   the external extension (executable)
#   lambda-chaos/wrapper                the AWS_LAMBDA_EXEC_WRAPPER target (executable)
#   lambda-chaos/chaos_layer/*.py       the standard-library-only package
# Usage: ./layer/build.sh [OUTPUT_ZIP]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/../dist/chaos-layer.zip"}
mkdir -p "$(dirname "$out")"
exec "${PYTHON:-python3}" "$here/build_zip.py" "$here" "$out"
