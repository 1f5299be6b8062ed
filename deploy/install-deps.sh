#!/usr/bin/env bash
# What a fresh Debian 12 machine needs for pybernetes (the lab and the tests), then the Python venv.
# Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(etcd-server etcd-client containerd runc containernetworking-plugins iptables conntrack iproute2
      docker-registry skopeo umoci busybox-static nginx curl netcat-openbsd iputils-ping make python3-venv
      prometheus nftables chromium)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nginx is here for its binary and files (the lab's nginx image, lab.images), not as this host's web server.
  if [[ " ${missing[*]} " == *" nginx "* ]]; then systemctl disable --now nginx.service >/dev/null 2>&1 || true; fi
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
echo "==> installing pybernetes and its dev tools into .venv"
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[dev]'
# The real kubectl, for the REST compatibility tests.
deploy/get-kubectl.sh
echo "==> dependencies ready"
