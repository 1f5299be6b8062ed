#!/usr/bin/env bash
# Regenerate Python code (and mypy stubs) from every .proto under protos/.
# Generated files are committed so installs need no protoc; `make protos` refreshes them.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
export PATH="$(dirname "$py"):$PATH"
mapfile -t files < <(cd protos && find . -name '*.proto' | sed 's|^\./||' | sort)
"$py" -m grpc_tools.protoc -I protos \
  --python_out=. --mypy_out=. --grpc_python_out=. --mypy_grpc_out=. \
  "${files[@]}"
# Every generated folder must be a package.
for f in "${files[@]}"; do
  d=$(dirname "$f")
  while [ "$d" != "." ]; do [ -f "$d/__init__.py" ] || : > "$d/__init__.py"; d=$(dirname "$d"); done
done
echo "generated ${#files[@]} proto files"
