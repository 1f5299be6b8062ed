#!/usr/bin/env bash
# Regenerate Python code (and mypy stubs) from every .proto under protos/, except protos/k8s.io (Kubernetes'
# own wire schema, vendored from kubernetes/api and kubernetes/apimachinery): that one becomes the descriptor set
# pybernetes/api/k8swire/k8s.binpb, read at run time to decode clients' protobuf bodies.
# Generated files are committed so installs need no protoc; `make protos` refreshes them.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
export PATH="$(dirname "$py"):$PATH"
mapfile -t files < <(cd protos && find . -name '*.proto' -not -path './k8s.io/*' | sed 's|^\./||' | sort)
mapfile -t k8s < <(cd protos && find k8s.io -name '*.proto' | sort)
"$py" -m grpc_tools.protoc -I protos --include_imports --descriptor_set_out=pybernetes/api/k8swire/k8s.binpb \
  "${k8s[@]}" 2>/dev/null  # upstream's files import more than they use: protoc warns
"$py" -m grpc_tools.protoc -I protos \
  --python_out=. --mypy_out=. --grpc_python_out=. --mypy_grpc_out=. \
  "${files[@]}"
# Every generated folder must be a package.
for f in "${files[@]}"; do
  d=$(dirname "$f")
  while [ "$d" != "." ]; do [ -f "$d/__init__.py" ] || : > "$d/__init__.py"; d=$(dirname "$d"); done
done
echo "generated ${#files[@]} proto files"
