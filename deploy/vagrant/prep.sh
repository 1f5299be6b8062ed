#!/usr/bin/env bash
# `make vagrant-prep`: everything the VMs need, put where the synced folder carries it, so that
# provisioning downloads nothing:
#   deploy/vagrant/artifacts/wheels/   the pybernetes wheel and every dependency's wheel (pip --no-index)
#   deploy/vagrant/artifacts/images/lab-images.oci.tar   busybox, nginx, python, pause under every name
#                                   of lab.images.CATALOG (its all-images.oci.tar; nodes import and serve it)
#   deploy/vagrant/artifacts/token     the shared cluster token (kept if present)
#   deploy/vagrant/artifacts/pki/      the cluster CA (the control plane's apiserver uses it) and, under
#                                   nodes/<name>/, each node's own kubelet and proxy certificates (kept if present)
# Run on the host (needs network access to PyPI for the dependency wheels, or a pip cache/mirror).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=deploy/vagrant/artifacts
mkdir -p "$OUT/wheels" "$OUT/images"
t0=$(date +%s)
echo "==> wheels -> $OUT/wheels"
rm -f "$OUT"/wheels/pybernetes-*.whl
# The dependency versions the dev venv was tested with, when there is one.
CONSTRAINTS=$(mktemp); trap 'rm -f "$CONSTRAINTS"' EXIT
"$PY" -m pip freeze --exclude-editable 2>/dev/null | grep -v '^pybernetes' >"$CONSTRAINTS" || true
# setuptools builds in ./build and never prunes it: modules moved or deleted since the last build would
# ship in the wheel, so every wheel starts from an empty build dir.
rm -rf build
"$PY" -m pip wheel -q --disable-pip-version-check -c "$CONSTRAINTS" --wheel-dir "$OUT/wheels" .
echo "==> images -> $OUT/images"
"$PY" -c "import sys, shutil
from lab.images import build_lab_images
a = build_lab_images(sys.argv[1], print).full_archive; shutil.copy2(a, sys.argv[2]); print(sys.argv[2])" \
  "${PB_IMAGE_CACHE:-/var/tmp/pybernetes-images}" "$OUT/images/lab-images.oci.tar"
if [ ! -s "$OUT/token" ]; then
  echo "==> token -> $OUT/token"
  (umask 077; "$PY" -c 'import secrets; print(secrets.token_hex(24))' >"$OUT/token")
fi
echo "==> pki -> $OUT/pki, $OUT/nodes"
for i in $(seq 1 "${PB_WORKERS:-3}"); do
  "$PY" deploy/pb_setup.py node-pki --pki-dir "$OUT/pki" --name "node-$i" --out "$OUT/nodes/node-$i"
done
ls -la "$OUT/wheels" "$OUT/images"
echo "==> vagrant-prep done in $(( $(date +%s) - t0 )) s"
