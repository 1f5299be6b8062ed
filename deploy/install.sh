#!/usr/bin/env bash
# Put pybernetes on a Debian 12 host as systemd services, for one role:
#
#   install.sh control-plane --advertise-address IP [--token-file F]
#   install.sh node --name node-1 --node-ip IP --server IP:6443 --token-file F [--ca-file CA] [--pod-cidr CIDR]
#              [--images OCI.tar]
#
# What it does: apt dependencies for the role; a venv at /opt/pybernetes with pybernetes installed from
# a wheel (--wheel FILE), offline from a directory of wheels (--find-links DIR: pip --no-index), or
# from the repo this script sits in; the units from deploy/systemd; /etc/default/pb-<component> with the
# flags; credentials and kubeconfigs under /etc/pybernetes (the REST API at https://HOST:6443, gRPC at HOST:6442
# in the cluster's pybernetes.io/grpc extension; root's ~/.kube/config on the control plane); for nodes the containerd config rendered
# by node_agent.containerd.render_config (deploy/pb_setup.py). With systemd as PID 1 it enables and starts
# the units; otherwise it prints the commands it would have run (and how to start each by hand).
#
# The cluster token (--token-file, one line) is shared: nodes (kubelet, proxy) use it towards the
# apiserver, and the apiserver presents it to kubelets given no --ca-file (logs/exec); with --ca-file a
# kubelet accepts only the apiserver's client certificate. The control plane creates the token when the file
# is missing; copy it (and the CA) to the nodes. The apiserver's etcd (127.0.0.1:2379) serves TLS and accepts
# only the apiserver's client certificate (<data-dir>/pki/etcd/ca.crt, apiserver-etcd-client.crt).
#
# Testing: --root DIR writes everything under DIR (venv, /etc, /var/lib, /run paths included, also in
# the generated flags) so the ExecStart lines can be run by hand; --dry-run prints and changes nothing.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

usage() {
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options (all roles):
  --wheel FILE            install this wheel (dependencies from --find-links DIR, else PyPI)
  --find-links DIR        offline install: pip install --no-index --find-links DIR
  --prefix DIR            the venv (default /opt/pybernetes)
  --root DIR              install under DIR instead of / (throwaway test install; implies --no-start)
  --dry-run               print the steps, change nothing
  --no-apt                do not run apt-get
  --no-start              install and enable nothing at boot; print how to start
  --registry              also install docker-registry as pb-registry (127.0.0.1:5000); on a node with
                          --images it serves every image of the archive (nginx:1.15.4 as library/nginx:1.15.4...)
  --prometheus            control plane: also Prometheus (Debian package) as pb-prometheus on :9090, scraping
                          the control plane and every node (file_sd kept up to date by pb-prometheus-sd);
                          node: serve the kubelet's /metrics on --node-ip so that Prometheus can scrape it
  --cluster-cidr CIDR     pod network of the cluster (default 10.244.0.0/16)
  --cluster-dns IP        the cluster DNS Service IP (default 10.96.0.10): kube-system/kube-dns in front of
                          pb-dns on the control plane; the nodes' pods get it as their nameserver
  --cluster-domain NAME   default cluster.local
control-plane:
  --advertise-address IP  address nodes reach the apiserver at (default: first global IPv4)
  --token-file F          cluster token (default /etc/pybernetes/token; created if missing)
  --ca-dir DIR            an existing cluster CA (DIR/ca.crt, DIR/ca.key) to use instead of making one (the
                          Vagrant lab's, made on the host with its nodes' certificates: pb_setup.py node-pki)
  --service-cidr CIDR     default 10.96.0.0/16
  --node-cidr-mask-size N default 24
  --nodes N=CIDR,...      pre-create Node objects with these podCIDRs once the apiserver answers
  --dns-upstream IP,...   where pb-dns forwards names outside the cluster domain (default: this host's
                          non-loopback nameservers; none: those names get SERVFAIL)
node:
  --name NAME             node name (default: hostname)
  --node-ip IP            the node's InternalIP: its address on the cluster network (required)
  --server HOST:PORT      the apiserver's REST API, HOST:6443 (required; gRPC is HOST:6442)
  --ca-file F             the cluster CA (control plane: /var/lib/pybernetes/apiserver/pki/ca.crt), for kubectl
                          and the kubelet API's --client-ca-file
  --token-file F          the cluster token from the control plane (required)
  --client-cert F --client-key F
                          the kubelet's client certificate (system:node:NAME in system:nodes) and key; the
                          apiserver's gRPC port requires one (pb_setup.py node-pki issues them from the CA)
  --proxy-client-cert F --proxy-client-key F
                          pb-proxy's (system:kube-proxy); default: the kubelet's
  --pod-cidr CIDR         fixed pod CIDR (else Node.spec.podCIDR from the controller manager)
  --images FILE           OCI archive to import into the node's containerd (k8s.io namespace), e.g. lab.images'
                          all-images.oci.tar. containerd mirrors docker.io, registry.k8s.io and k8s.gcr.io to
                          127.0.0.1:5000 (hosts.toml under /var/lib/pybernetes/containerd/certs.d)
EOF
}

ROLE=${1:-}
case "$ROLE" in
  control-plane|node) shift ;;
  -h|--help|help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

WHEEL="" FIND_LINKS="" PREFIX=/opt/pybernetes ROOT="" DRY=0 APT=1 START=1 REGISTRY=0
CLUSTER_CIDR=10.244.0.0/16 SERVICE_CIDR=10.96.0.0/16 MASK=24 ADVERTISE="" TOKEN_FILE="" NODES=""
CLUSTER_DNS=10.96.0.10 CLUSTER_DOMAIN=cluster.local DNS_UPSTREAM=-
NAME=$(hostname) NODE_IP="" SERVER="" POD_CIDR="" IMAGES="" CA_FILE="" CA_DIR=""
CLIENT_CERT="" CLIENT_KEY="" PROXY_CERT="" PROXY_KEY=""
PROMETHEUS=0 PROM_LISTEN=0.0.0.0:9090
need() { [ $# -ge 2 ] || { echo "install.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  opt=$1
  case "$opt" in
    --*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
  esac
  case "$opt" in
    --wheel) need "$@"; WHEEL=$2; shift ;;
    --find-links) need "$@"; FIND_LINKS=$2; shift ;;
    --prefix) need "$@"; PREFIX=$2; shift ;;
    --root) need "$@"; ROOT=$(mkdir -p "$2" && cd "$2" && pwd); START=0; shift ;;
    --dry-run) DRY=1 ;;
    --no-apt) APT=0 ;;
    --no-start) START=0 ;;
    --registry) REGISTRY=1 ;;
    --prometheus) PROMETHEUS=1 ;;
    --no-prometheus) PROMETHEUS=0 ;;
    --cluster-cidr) need "$@"; CLUSTER_CIDR=$2; shift ;;
    --cluster-dns) need "$@"; CLUSTER_DNS=$2; shift ;;
    --cluster-domain) need "$@"; CLUSTER_DOMAIN=$2; shift ;;
    --dns-upstream) need "$@"; DNS_UPSTREAM=$2; shift ;;
    --service-cidr) need "$@"; SERVICE_CIDR=$2; shift ;;
    --node-cidr-mask-size) need "$@"; MASK=$2; shift ;;
    --advertise-address) need "$@"; ADVERTISE=$2; shift ;;
    --token-file) need "$@"; TOKEN_FILE=$2; shift ;;
    --nodes) need "$@"; NODES=$2; shift ;;
    --name) need "$@"; NAME=$2; shift ;;
    --node-ip) need "$@"; NODE_IP=$2; shift ;;
    --server) need "$@"; SERVER=$2; shift ;;
    --ca-file) need "$@"; CA_FILE=$2; shift ;;
    --ca-dir) need "$@"; CA_DIR=$2; shift ;;
    --client-cert) need "$@"; CLIENT_CERT=$2; shift ;;
    --client-key) need "$@"; CLIENT_KEY=$2; shift ;;
    --proxy-client-cert) need "$@"; PROXY_CERT=$2; shift ;;
    --proxy-client-key) need "$@"; PROXY_KEY=$2; shift ;;
    --pod-cidr) need "$@"; POD_CIDR=$2; shift ;;
    --images) need "$@"; IMAGES=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $opt" >&2; exit 2 ;;
  esac
  shift
done

abspath() { [ -z "$1" ] || [ ! -e "$1" ] && echo "$1" || echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
WHEEL=$(abspath "$WHEEL"); FIND_LINKS=$(abspath "$FIND_LINKS"); TOKEN_FILE=$(abspath "$TOKEN_FILE")
IMAGES=$(abspath "$IMAGES"); CA_FILE=$(abspath "$CA_FILE"); CA_DIR=$(abspath "$CA_DIR")
CLIENT_CERT=$(abspath "$CLIENT_CERT"); CLIENT_KEY=$(abspath "$CLIENT_KEY")
PROXY_CERT=$(abspath "$PROXY_CERT"); PROXY_KEY=$(abspath "$PROXY_KEY")

# ---- paths (all under $ROOT; the generated flags use the same, so a --root install runs as is) ----
VENV=$ROOT$PREFIX
ETC=$ROOT/etc/pybernetes
DEFAULTS=$ROOT/etc/default
UNITDIR=$ROOT/etc/systemd/system
STATE=$ROOT/var/lib/pybernetes
RUN=$ROOT/run/pybernetes
CTD_BASE=$STATE/containerd
CTD_RUN=$RUN/containerd
CTD_SOCK=$CTD_RUN/containerd.sock
SHARE=$VENV/share/pybernetes
[ -n "$TOKEN_FILE" ] || TOKEN_FILE=$ETC/token

say() { printf '==> %s\n' "$*"; }
run() {  # run a command, or print it under --dry-run
  if [ "$DRY" = 1 ]; then printf '    + %s\n' "$*"; else "$@"; fi
}
write() {  # write stdin to a file (mode $2, default 0644), or show it under --dry-run
  local path=$1 mode=${2:-0644}
  if [ "$DRY" = 1 ]; then
    printf '    + write %s (mode %s)\n' "$path" "$mode"
    case "$path" in *.service) cat >/dev/null ;; *) sed 's/^/        /' ;; esac
  else
    mkdir -p "$(dirname "$path")"; cat >"$path.tmp"; chmod "$mode" "$path.tmp"; mv "$path.tmp" "$path"
  fi
}
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; }
first_ip() { ip -4 -o addr show scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}'; }

# ---- checks ----
[ "$(id -u)" = 0 ] || [ "$DRY" = 1 ] || [ -n "$ROOT" ] || { echo "install.sh: run as root" >&2; exit 1; }
if [ "$ROLE" = node ]; then
  missing=()
  [ -n "$NODE_IP" ] || missing+=(--node-ip)
  [ -n "$SERVER" ] || missing+=(--server)
  [ -n "$TOKEN_FILE" ] && { [ -f "$TOKEN_FILE" ] || [ "$DRY" = 1 ]; } || missing+=("--token-file (an existing file)")
  [ ${#missing[@]} = 0 ] || { echo "install.sh node: missing ${missing[*]}" >&2; exit 2; }
else
  [ -n "$ADVERTISE" ] || ADVERTISE=$(first_ip)
  [ -n "$ADVERTISE" ] || ADVERTISE=127.0.0.1
fi
[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || { echo "install.sh: no wheel at $WHEEL" >&2; exit 2; }
[ -z "$FIND_LINKS" ] || [ -d "$FIND_LINKS" ] || { echo "install.sh: no directory $FIND_LINKS" >&2; exit 2; }
[ -z "$IMAGES" ] || [ -f "$IMAGES" ] || [ "$DRY" = 1 ] || { echo "install.sh: no image archive $IMAGES" >&2; exit 2; }

DRYNOTE=""; [ "$DRY" = 0 ] || DRYNOTE=" (dry run)"
say "pybernetes $ROLE install${ROOT:+ under $ROOT}$DRYNOTE"

# ---- 1. Debian packages ----
PKGS=(python3 python3-venv iproute2 iptables conntrack curl ca-certificates kmod)
case "$ROLE" in
  control-plane) PKGS+=(etcd-server etcd-client) ;;
  node) PKGS+=(containerd runc containernetworking-plugins nftables netcat-openbsd iputils-ping) ;;
esac
[ "$REGISTRY" = 0 ] || PKGS+=(docker-registry skopeo)
[ "$PROMETHEUS" = 0 ] || [ "$ROLE" != control-plane ] || PKGS+=(prometheus)
if [ "$APT" = 1 ] && [ -z "$ROOT" ]; then
  missing=()
  for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt: ${missing[*]}"
    run apt-get update -qq
    # policy-rc.d: packages do not start their own daemons (etcd.service would take :2379, which the
    # apiserver's embedded etcd uses; containerd.service is not ours).
    if [ "$DRY" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; PRC=1
    fi
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ "${PRC:-0}" = 0 ] || rm -f /usr/sbin/policy-rc.d
  else
    say "apt: all of ${PKGS[*]} present"
  fi
else
  say "apt: skipped (needs: ${PKGS[*]})"
fi

# ---- 2. the venv ----
say "venv $VENV"
if [ ! -x "$VENV/bin/python" ]; then run python3 -m venv "$VENV"; fi
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
if [ -n "$FIND_LINKS" ]; then
  PIP+=(--no-index --find-links "$FIND_LINKS")
  TARGET=${WHEEL:-pybernetes}
elif [ -n "$WHEEL" ]; then
  TARGET=$WHEEL
else
  TARGET=$REPO
fi
run "${PIP[@]}" "$TARGET"
# The same version again (a rebuilt wheel, the repo after edits) is installed over the old one.
[ "$TARGET" = pybernetes ] || run "${PIP[@]}" --no-deps --force-reinstall "$TARGET"
run mkdir -p "$SHARE/containerd"
run install -m 0644 "$HERE/containerd/config.toml.tmpl" "$SHARE/containerd/config.toml.tmpl"
run install -m 0755 "$HERE/pb_setup.py" "$SHARE/pb_setup.py"
SETUP=("$VENV/bin/python" "$SHARE/pb_setup.py")
if [ -z "$ROOT" ]; then run ln -sf "$VENV/bin/pbctl" /usr/local/bin/pbctl; fi

# ---- 3. units ----
UNITS=()
case "$ROLE" in
  control-plane) UNITS=(pb-apiserver pb-scheduler pb-controller-manager pb-dns) ;;
  node) UNITS=(pb-containerd pb-kubelet pb-proxy) ;;
esac
[ "$REGISTRY" = 0 ] || UNITS+=(pb-registry)
say "units: ${UNITS[*]} -> $UNITDIR"
run mkdir -p "$UNITDIR" "$DEFAULTS" "$ETC"
for u in "${UNITS[@]}"; do
  # The units name /opt/pybernetes and /etc/...; a --prefix or --root install rewrites those paths.
  sed -e "s#/opt/pybernetes#$VENV#g" -e "s#/etc/default/#$DEFAULTS/#g" -e "s#/etc/pybernetes#$ETC#g" \
      -e "s#/run/pybernetes#$RUN#g" "$HERE/systemd/$u.service" | write "$UNITDIR/$u.service"
done

env_file() {  # env_file COMPONENT VAR ARGS... -> /etc/default/pb-COMPONENT
  local comp=$1 var=$2; shift 2
  { echo "# pb-$comp flags (written by deploy/install.sh $ROLE; edit and restart pb-$comp)"
    echo "$var=\"$*\""; } | write "$DEFAULTS/pb-$comp"
}

# ---- 4. role configuration ----
if [ "$ROLE" = control-plane ]; then
  run mkdir -p "$STATE/apiserver"
  if [ "$TOKEN_FILE" != "$ETC/token" ] && [ -s "$TOKEN_FILE" ]; then run install -m 0600 "$TOKEN_FILE" "$ETC/token"; fi
  TOKEN_FILE=$ETC/token
  if [ ! -s "$TOKEN_FILE" ]; then run "${SETUP[@]}" token --out "$TOKEN_FILE"; fi
  if [ -n "$CA_DIR" ] && [ ! -s "$STATE/apiserver/pki/ca.key" ]; then
    run install -d -m 0700 "$STATE/apiserver/pki"
    run install -m 0644 "$CA_DIR/ca.crt" "$STATE/apiserver/pki/ca.crt"
    run install -m 0600 "$CA_DIR/ca.key" "$STATE/apiserver/pki/ca.key"
  fi
  run "${SETUP[@]}" control-plane-tokens --tokens-csv "$STATE/apiserver/tokens.csv" \
      --node-token-file "$TOKEN_FILE" --config-dir "$ETC" --server "127.0.0.1:6443" \
      --pki-dir "$STATE/apiserver/pki" --advertise-address "$ADVERTISE"
  # /metrics behind client certificates (docs/security.md "Who may read /metrics"): each health port is HTTPS
  # with a serving certificate from the cluster CA; Prometheus scrapes as user prometheus (system:monitoring).
  PKI=$STATE/apiserver/pki
  run "${SETUP[@]}" metrics-pki --pki-dir "$PKI" --advertise-address "$ADVERTISE"
  secure() { echo "--client-ca-file=$PKI/ca.crt --tls-cert-file=$PKI/$1-serving.crt --tls-private-key-file=$PKI/$1-serving.key"; }
  env_file apiserver PB_APISERVER_ARGS --data-dir="$STATE/apiserver" --bind-address=0.0.0.0 --secure-port=6443 \
    --grpc-port=6442 \
    --advertise-address="$ADVERTISE" --health-port=6444 --admin-config="$ETC/admin.conf" \
    --service-cluster-ip-range="$SERVICE_CIDR" --kubelet-client-token-file="$TOKEN_FILE" \
    --etcd-client-port=2379 --etcd-peer-port=2380 --etcd-metrics-port=2381 --client-ca-file="$PKI/ca.crt"
  # shellcheck disable=SC2046  # secure's flags are words without spaces
  env_file scheduler PB_SCHEDULER_ARGS --kubeconfig="$ETC/scheduler.conf" --health-port=10259 $(secure scheduler)
  # shellcheck disable=SC2046
  env_file controller-manager PB_CONTROLLER_MANAGER_ARGS --config="$ETC/controller-manager.conf" \
    --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size="$MASK" --health-port=10257 $(secure controller-manager)
  if [ "$DNS_UPSTREAM" = - ]; then DNS_UPSTREAM=$("$VENV/bin/python" "$SHARE/pb_setup.py" dns-upstreams 2>/dev/null || true); fi
  dargs=(--kubeconfig="$ETC/dns.conf" --bind-address="$ADVERTISE" --port=53 --cluster-domain="$CLUSTER_DOMAIN"
         --health-port=9153 $(secure dns))
  [ -z "$DNS_UPSTREAM" ] || dargs+=(--upstream="$DNS_UPSTREAM")
  env_file dns PB_DNS_ARGS "${dargs[@]}"
else
  run mkdir -p "$CTD_BASE" "$STATE/kubelet" "$ETC/containerd"
  run "${SETUP[@]}" containerd-config --out "$ETC/containerd/config.toml" --base "$CTD_BASE" --run-dir "$CTD_RUN"
  echo "PB_CONTAINERD_ARGS=\"\"" | write "$DEFAULTS/pb-containerd"
  if [ "$TOKEN_FILE" != "$ETC/token" ]; then run install -m 0600 "$TOKEN_FILE" "$ETC/token"; fi
  ca=(); [ -z "$CA_FILE" ] || ca=(--ca-file "$CA_FILE")
  # The node's own certificates (gRPC requires one), copied under $ETC/pki; without them the token alone.
  kcred=(--token-file "$ETC/token") pcred=(--token-file "$ETC/token")
  [ -n "$PROXY_CERT" ] || { PROXY_CERT=$CLIENT_CERT; PROXY_KEY=$CLIENT_KEY; }
  if [ -n "$CLIENT_CERT" ]; then
    run install -d -m 0700 "$ETC/pki"
    run install -m 0644 "$CLIENT_CERT" "$ETC/pki/kubelet.crt"; run install -m 0600 "$CLIENT_KEY" "$ETC/pki/kubelet.key"
    run install -m 0644 "$PROXY_CERT" "$ETC/pki/proxy.crt"; run install -m 0600 "$PROXY_KEY" "$ETC/pki/proxy.key"
    kcred=(--client-cert "$ETC/pki/kubelet.crt" --client-key "$ETC/pki/kubelet.key")
    pcred=(--client-cert "$ETC/pki/proxy.crt" --client-key "$ETC/pki/proxy.key")
  else
    say "no --client-cert: the apiserver's gRPC port requires one; the kubelet and pb-proxy cannot connect"
  fi
  run "${SETUP[@]}" client-config --out "$ETC/kubelet.conf" --server "$SERVER" "${kcred[@]}" "${ca[@]}"
  run "${SETUP[@]}" client-config --out "$ETC/proxy.conf" --server "$SERVER" "${pcred[@]}" "${ca[@]}"
  kargs=(--config="$ETC/kubelet.conf" --node-name="$NAME" --node-ip="$NODE_IP"
         --containerd-socket="$CTD_SOCK" --root-dir="$STATE/kubelet"
         --cni-conf-dir="$CTD_BASE/cni/net.d" --cni-data-dir="$RUN/cni/ipam"
         --health-port=10248 --port=10250 --authentication-token-file="$ETC/token"
         --cluster-dns="$CLUSTER_DNS" --cluster-domain="$CLUSTER_DOMAIN")
  [ -z "$POD_CIDR" ] || kargs+=(--pod-cidr="$POD_CIDR")
  # The kubelet API (10250) serves TLS (a self-signed certificate under its root dir). With the cluster CA it
  # requires the apiserver's client certificate (apiserver-kubelet-client, made by the apiserver under its pki
  # dir) and ignores the token; without it, it accepts the cluster token only.
  if [ -n "$CA_FILE" ]; then
    run install -m 0644 "$CA_FILE" "$ETC/ca.crt"
    kargs+=(--client-ca-file="$ETC/ca.crt")
  fi
  # The control plane's Prometheus scrapes the kubelet at InternalIP:10248 (file_sd from the Node objects).
  [ "$PROMETHEUS" = 0 ] || kargs+=(--health-host="$NODE_IP")
  env_file kubelet PB_KUBELET_ARGS "${kargs[@]}"
  # pb-proxy is the newest component: pass only the flags its --help lists (as the lab does).
  pflags=""
  if [ -x "$VENV/bin/pb-proxy" ]; then pflags=$("$VENV/bin/pb-proxy" --help 2>/dev/null | grep -o -- '--[a-z0-9-]*' || true); fi
  pick() { for f in "$@"; do if grep -qx -- "$f" <<<"$pflags"; then echo "$f"; return; fi; done; }
  pargs=()
  add() { local v=$1 f; shift; f=$(pick "$@"); [ -z "$f" ] || pargs+=("$f=$v"); }
  add "$ETC/proxy.conf" --kubeconfig --config
  add "$NAME" --hostname-override --node-name
  add "$NODE_IP" --bind-address
  add "$CLUSTER_CIDR" --cluster-cidr
  add "$SERVICE_CIDR" --service-cidr --service-cluster-ip-range
  add 10256 --health-port --healthz-port
  add 10249 --metrics-port
  # Metrics: on loopback without the cluster CA (kube-proxy's default); with it on the node's address for the
  # control plane's Prometheus, over HTTPS (a self-signed serving certificate) for authorized certificates only.
  mflags=(); [ -z "$CA_FILE" ] || mflags=(--metrics-bind-address="$NODE_IP" --client-ca-file="$ETC/ca.crt")
  for f in "${mflags[@]}"; do add "${f#*=}" "${f%%=*}"; done
  [ -n "$pflags" ] || { pargs=(--kubeconfig="$ETC/proxy.conf" --hostname-override="$NAME" --bind-address="$NODE_IP"
                               --cluster-cidr="$CLUSTER_CIDR" --service-cidr="$SERVICE_CIDR" --health-port=10256
                               --metrics-port=10249 "${mflags[@]}")
                        say "pb-proxy --help did not answer: writing the default flags, check $DEFAULTS/pb-proxy"; }
  env_file proxy PB_PROXY_ARGS "${pargs[@]}"
  # Pods are routed between nodes (host-gw, no overlay): forwarding on, bridged traffic through netfilter.
  printf 'net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n' | write "$ROOT/etc/sysctl.d/90-pybernetes.conf"
  printf 'overlay\nbr_netfilter\n' | write "$ROOT/etc/modules-load.d/pybernetes.conf"
  if [ -z "$ROOT" ]; then
    run modprobe overlay || true
    run modprobe br_netfilter || true
    run sysctl -q -p "$ROOT/etc/sysctl.d/90-pybernetes.conf" || true
  fi
fi
if [ "$REGISTRY" = 1 ]; then
  run mkdir -p "$STATE/registry"
  write "$ETC/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
EOF
  echo 'PB_REGISTRY_ARGS=""' | write "$DEFAULTS/pb-registry"
fi

# ---- 5. start ----
if [ "$START" = 1 ] && systemd_running; then
  say "systemd: enabling and starting ${UNITS[*]}"
  run systemctl daemon-reload
  if [ "$ROLE" = control-plane ] && systemctl is-enabled -q etcd.service 2>/dev/null; then
    say "disabling Debian's etcd.service (the apiserver runs its own etcd on 127.0.0.1:2379)"
    run systemctl disable --now etcd.service
  fi
  run systemctl enable "${UNITS[@]}"
  run systemctl restart "${UNITS[@]}"
  if [ "$ROLE" = control-plane ] && [ "$DRY" = 0 ]; then
    # A deadline, not a count of tries: on a loaded TCG VM the first start (etcd, watch caches, PKI) takes
    # minutes and a /readyz answer (its etcd check) seconds; PB_READY_TIMEOUT (s) to change it.
    say "waiting for the apiserver (admin config $ETC/admin.conf; up to ${PB_READY_TIMEOUT:-900} s)"
    deadline=$(( $(date +%s) + ${PB_READY_TIMEOUT:-900} ))
    # The health port serves HTTPS (--client-ca-file); /readyz needs no client certificate.
    until curl -fs -o /dev/null --max-time 10 --cacert "$PKI/ca.crt" https://127.0.0.1:6444/readyz \
        && [ -s "$ETC/admin.conf" ]; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "install.sh: apiserver not ready after ${PB_READY_TIMEOUT:-900} s; journalctl -u pb-apiserver:" >&2
        journalctl -u pb-apiserver --no-pager -n 30 >&2 || true
        exit 1
      fi
      sleep 2
    done
    # root's kubeconfig, as kubeadm suggests (kubectl and pbctl both read it); a file of the user's own stays.
    mkdir -p /root/.kube
    if [ ! -e /root/.kube/config ] || [ -L /root/.kube/config ]; then
      ln -sf "$ETC/admin.conf" /root/.kube/config
    else
      say "/root/.kube/config exists: not replaced; use KUBECONFIG=$ETC/admin.conf"
    fi
    # A just-started apiserver on a slow host (TCG VMs) can miss a client's deadline: try a few times.
    retry() { local i; for i in 1 2 3 4 5; do "$@" && return 0; say "failed (try $i of 6), again in 10 s: $*"; sleep 10; done; "$@"; }
    if [ -n "$NODES" ]; then
      # shellcheck disable=SC2086
      retry "${SETUP[@]}" nodes --config "$ETC/admin.conf" ${NODES//,/ }
    fi
    retry "${SETUP[@]}" kube-dns --config "$ETC/admin.conf" --cluster-ip "$CLUSTER_DNS" --address "$ADVERTISE"
  fi
  if [ "$ROLE" = node ] && [ -n "$IMAGES" ] && [ "$DRY" = 0 ]; then
    for _ in $(seq 1 60); do [ -S "$CTD_SOCK" ] && break; sleep 1; done
    say "importing images from $IMAGES"
    ctr --address "$CTD_SOCK" -n k8s.io images import "$IMAGES"
    if [ "$REGISTRY" = 1 ]; then
      # The mirrors' target: `image: busybox` (:latest, pulled every time) and any catalog tag pull from here.
      for _ in $(seq 1 30); do curl -fs -o /dev/null --max-time 2 http://127.0.0.1:5000/v2/ && break; sleep 1; done
      say "serving $IMAGES in pb-registry (127.0.0.1:5000)"
      "$VENV/bin/python" -m lab.image_registry push-archive "$IMAGES" 127.0.0.1:5000 | cut -c1-200
    fi
  fi
else
  say "not starting anything ($( [ "$START" = 0 ] && echo 'as asked' || echo 'systemd is not PID 1' )). To start:"
  echo "    systemctl daemon-reload && systemctl enable --now ${UNITS[*]}"
  echo "  or by hand, in this order (each in its own terminal):"
  for u in "${UNITS[@]}"; do
    exec_line=$(sed -n 's/^ExecStart=//p' "$HERE/systemd/$u.service" | sed -e "s#/opt/pybernetes#$VENV#g" -e "s#/etc/pybernetes#$ETC#g")
    echo "    set -a; . $DEFAULTS/$u; set +a; $exec_line"
  done
  [ "$ROLE" != node ] || [ -z "$IMAGES" ] || echo "  then: ctr --address $CTD_SOCK -n k8s.io images import $IMAGES"
  [ "$ROLE" != node ] || [ -z "$IMAGES" ] || [ "$REGISTRY" = 0 ] || \
    echo "  then: $VENV/bin/python -m lab.image_registry push-archive $IMAGES 127.0.0.1:5000"
  [ "$ROLE" != control-plane ] || [ -z "$NODES" ] || \
    echo "  then: ${SETUP[*]} nodes --config $ETC/admin.conf ${NODES//,/ }"
  [ "$ROLE" != control-plane ] || \
    echo "  then: ${SETUP[*]} kube-dns --config $ETC/admin.conf --cluster-ip $CLUSTER_DNS --address $ADVERTISE"
fi
# ---- 6. Prometheus (control plane with --prometheus) ----
# deploy/prometheus/prometheus.yml rendered with the control plane's targets (every component on this host's
# loopback, default ports) into /etc/pybernetes/prometheus/, next to rules/alerts.yml and file_sd/; the
# nodes come from file_sd/{kubelet,proxy}.json, which pb-prometheus-sd (`python -m lab.prometheus
# sync-file-sd`) rewrites from the Node objects, so a new node is scraped without a reload. pb-prometheus
# runs Debian's /usr/bin/prometheus with that config and the pybernetes consoles; Debian's own
# prometheus.service (its own config, the same port) is disabled.
if [ "$ROLE" = control-plane ] && [ "$PROMETHEUS" = 1 ]; then
  PROM_ETC=$ETC/prometheus PROM_SHARE=$SHARE/prometheus PROM_DATA=$STATE/prometheus PROM_PORT=${PROM_LISTEN##*:}
  say "prometheus: $PROM_ETC/prometheus.yml, consoles $PROM_SHARE/consoles, data $PROM_DATA, on $PROM_LISTEN"
  run mkdir -p "$PROM_ETC/rules" "$PROM_ETC/file_sd" "$PROM_ETC/console_libraries" "$PROM_SHARE/consoles" "$PROM_DATA"
  run install -m 0644 "$HERE/prometheus/prometheus.yml" "$PROM_SHARE/prometheus.yml"
  run install -m 0644 "$HERE/prometheus/rules/alerts.yml" "$PROM_ETC/rules/alerts.yml"
  run install -m 0644 "$HERE"/prometheus/consoles/*.html "$PROM_SHARE/consoles/"
  run install -m 0644 "$HERE/prometheus/console_libraries/pybernetes.lib" "$PROM_ETC/console_libraries/pybernetes.lib"
  # The consoles build on Prometheus' own prom.lib/menu.lib; Debian keeps them among the examples.
  promlib=""
  for d in /usr/share/prometheus/console_libraries /etc/prometheus/console_libraries \
           /usr/share/doc/prometheus/examples/console_libraries; do
    if [ -f "$d/prom.lib" ]; then promlib=$d; break; fi
  done
  if [ -n "$promlib" ]; then
    run install -m 0644 "$promlib/prom.lib" "$promlib/menu.lib" "$PROM_ETC/console_libraries/"
  else
    say "prom.lib not found (prometheus not installed?): copy prom.lib and menu.lib into $PROM_ETC/console_libraries"
  fi
  for job in kubelet proxy; do
    [ -s "$PROM_ETC/file_sd/$job.json" ] || echo "[]" | write "$PROM_ETC/file_sd/$job.json"
  done
  PROM_TARGETS=(apiserver=127.0.0.1:6444 scheduler=127.0.0.1:10259 controller-manager=127.0.0.1:10257 dns=127.0.0.1:9153
                etcd=127.0.0.1:2381 "prometheus=127.0.0.1:$PROM_PORT")
  # Prometheus' own identity (user prometheus, group system:monitoring) and the CA, readable by its user only.
  run install -d -m 0750 "$PROM_ETC/pki"
  run "${SETUP[@]}" metrics-pki --pki-dir "$STATE/apiserver/pki" --advertise-address "$ADVERTISE" --out "$PROM_ETC/pki"
  if getent passwd prometheus >/dev/null; then run chown -R prometheus: "$PROM_ETC/pki"; fi
  # The wheel has no deploy/ directory: render from the template installed above.
  run "$VENV/bin/python" -c '
import sys
from pathlib import Path

import yaml

import lab.prometheus as prom

template, out = Path(sys.argv[1]), Path(sys.argv[2])
prom.CONFIG_TEMPLATE = template
targets: dict[str, list[str]] = {}
for item in sys.argv[3:]:
    job, addr = item.split("=", 1)
    targets.setdefault(job, []).append(addr)
pki = out.parent / "pki"
# the nodes serve /metrics with self-signed certificates (the kubelet makes its own): not verified, as
# Prometheus scrapes kubelets in most clusters; Prometheus still authenticates with its certificate
scrape = prom.ScrapeTLS(pki / "ca.crt", pki / "prometheus.crt", pki / "prometheus.key", verify_nodes=False)
cfg = prom.render_config(targets, tls=scrape)
out.write_text(f"# Rendered by deploy/install.sh from {template}; rerun install.sh to change it.\n"
               + yaml.safe_dump(cfg, sort_keys=False))
' "$PROM_SHARE/prometheus.yml" "$PROM_ETC/prometheus.yml" "${PROM_TARGETS[@]}"
  if [ "$DRY" = 0 ] && command -v promtool >/dev/null; then
    run promtool check config "$PROM_ETC/prometheus.yml" >/dev/null
  fi
  write "$DEFAULTS/pb-prometheus" <<EOF
# pb-prometheus flags (written by deploy/install.sh control-plane --prometheus; edit and restart pb-prometheus)
PB_PROMETHEUS_ARGS="--config.file=$PROM_ETC/prometheus.yml --storage.tsdb.path=$PROM_DATA --storage.tsdb.retention.time=15d --web.listen-address=$PROM_LISTEN --web.console.templates=$PROM_SHARE/consoles --web.console.libraries=$PROM_ETC/console_libraries --web.enable-lifecycle"
EOF
  write "$UNITDIR/pb-prometheus.service" <<EOF
# Prometheus for pybernetes (:$PROM_PORT, consoles at /consoles/pybernetes-overview.html). Flags in $DEFAULTS/pb-prometheus.
[Unit]
Description=Prometheus for pybernetes
Wants=network-online.target pb-prometheus-sd.service
After=network-online.target

[Service]
Type=simple
User=prometheus
Environment=PB_PROMETHEUS_ARGS=
EnvironmentFile=-$DEFAULTS/pb-prometheus
ExecStart=/usr/bin/prometheus \$PB_PROMETHEUS_ARGS
ExecReload=/bin/kill -HUP \$MAINPID
Restart=always
RestartSec=2
TimeoutStopSec=20

[Install]
WantedBy=multi-user.target
EOF
  write "$UNITDIR/pb-prometheus-sd.service" <<EOF
# Keeps $PROM_ETC/file_sd/{kubelet,proxy}.json equal to the Node objects (InternalIP:10248, :10249).
[Unit]
Description=pybernetes Prometheus node discovery (file_sd from Node objects)
Wants=pb-apiserver.service
After=pb-apiserver.service

[Service]
Type=simple
ExecStart=$VENV/bin/python -m lab.prometheus sync-file-sd --dir $PROM_ETC/file_sd --config $ETC/admin.conf
Restart=always
RestartSec=5
TimeoutStopSec=20

[Install]
WantedBy=multi-user.target
EOF
  PROM_UNITS=(pb-prometheus-sd pb-prometheus)
  if [ "$START" = 1 ] && systemd_running; then
    say "systemd: enabling and starting ${PROM_UNITS[*]}"
    if id prometheus >/dev/null 2>&1; then run chown -R prometheus:prometheus "$PROM_DATA"; fi
    run systemctl daemon-reload
    if systemctl is-enabled -q prometheus.service 2>/dev/null || systemctl is-active -q prometheus.service 2>/dev/null; then
      say "disabling Debian's prometheus.service (pb-prometheus serves :$PROM_PORT with the pybernetes config)"
      run systemctl disable --now prometheus.service
    fi
    run systemctl enable "${PROM_UNITS[@]}"
    run systemctl restart "${PROM_UNITS[@]}"
  else
    say "Prometheus not started. To start: systemctl daemon-reload && systemctl enable --now ${PROM_UNITS[*]}"
    echo "  or by hand: $VENV/bin/python -m lab.prometheus sync-file-sd --dir $PROM_ETC/file_sd --config $ETC/admin.conf &"
    echo "              set -a; . $DEFAULTS/pb-prometheus; set +a; prometheus \$PB_PROMETHEUS_ARGS"
  fi
  say "Prometheus: http://$ADVERTISE:$PROM_PORT/consoles/pybernetes-overview.html"
fi
if [ "$ROLE" = control-plane ]; then
  say "done. Admin kubeconfig: $ETC/admin.conf (written by the apiserver on start; root's ~/.kube/config): kubectl get nodes; pbctl get nodes"
  say "Cluster token for nodes: $TOKEN_FILE; CA for their --ca-file: $STATE/apiserver/pki/ca.crt"
else
  say "done. Node $NAME ($NODE_IP) -> $SERVER"
fi
