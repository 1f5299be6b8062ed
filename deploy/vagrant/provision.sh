#!/usr/bin/env bash
# Vagrant shell provisioner: one VM of the lab, through deploy/install.sh, from the synced repo only.
#   provision.sh control-plane control-plane 172.31.0.10 172.31.0.10 node-1=10.244.1.0/24,...
#   provision.sh node node-1 172.31.0.11 172.31.0.10 ""
# Needs deploy/vagrant/artifacts/ from `make vagrant-prep` (wheels, images, token): nothing is downloaded
# except the apt packages a stock box lacks (none on the offline pybernetes/debian12 box).
set -euo pipefail
ROLE=$1 NAME=$2 IP=$3 CP_IP=$4 NODES=${5:-}
SRC=/pybernetes
A=$SRC/deploy/vagrant/artifacts
# Each VM has only its own keys (the Vagrantfile's rsync excludes): the control plane the CA under pki/, a
# node its own certificates under nodes/<name>/.
if [ "$ROLE" = control-plane ]; then OWN=$A/pki/ca.crt; else OWN=$A/nodes/$NAME/kubelet.key; fi
for f in "$A/token" "$A/images/lab-images.oci.tar" "$OWN"; do
  [ -s "$f" ] || { echo "provision: $f missing: run 'make vagrant-prep' on the host, then 'vagrant provision'" >&2; exit 1; }
done
compgen -G "$A/wheels/pybernetes-*.whl" >/dev/null || { echo "provision: no pybernetes wheel in $A/wheels: run 'make vagrant-prep'" >&2; exit 1; }
t0=$(date +%s)
echo "==> $NAME ($ROLE) $IP; control plane $CP_IP"

# Names of the lab's machines, for people (components use IPs).
sed -i '/# pybernetes lab$/d' /etc/hosts
{
  echo "$CP_IP control-plane # pybernetes lab"
  i=1
  for spec in ${NODES//,/ }; do echo "172.31.0.$((10 + i)) ${spec%%=*} # pybernetes lab"; i=$((i + 1)); done
} >>/etc/hosts

# Debian's own daemons from the same packages are not part of the lab (etcd would hold :2379).
systemctl disable --now etcd.service containerd.service docker-registry.service 2>/dev/null || true
# Debian's prometheus.service (its own config on :9090) too: the control plane runs pb-prometheus instead.
systemctl disable --now prometheus.service prometheus-node-exporter.service 2>/dev/null || true

common=(--find-links "$A/wheels" --token-file "$A/token")
# Prometheus on the control plane (PB_PROMETHEUS=0 leaves it out); with it the kubelets serve /metrics on
# their node IP. Offline, only a box built with the prometheus package has it (deploy/vagrant/build-box.sh).
if [ "${PB_PROMETHEUS:-1}" = 1 ]; then
  if [ "$ROLE" = node ] || [ "${PB_OFFLINE:-0}" != 1 ] || dpkg -s prometheus >/dev/null 2>&1; then
    common+=(--prometheus)
  else
    echo "provision: this box has no prometheus package (rebuild it with deploy/vagrant/build-box.sh); no Prometheus" >&2
  fi
fi
if [ "$ROLE" = control-plane ]; then
  # pb-dns answers pods here (kube-dns 10.96.0.10 is DNATed to this host, the pod's address kept): the
  # answers need a route back to each node's pod CIDR, as the nodes' pb-proxy adds among themselves.
  # A oneshot unit keeps them across reboots.
  routes=() i=1
  for spec in ${NODES//,/ }; do routes+=("${spec#*=} via 172.31.0.$((10 + i))"); i=$((i + 1)); done
  if [ "${#routes[@]}" -gt 0 ]; then
    {
      printf '[Unit]\nDescription=pybernetes pod CIDR routes to the nodes (pb-dns answers)\n'
      printf 'After=network-online.target\nWants=network-online.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n'
      for r in "${routes[@]}"; do printf 'ExecStart=/sbin/ip route replace %s\n' "$r"; done
      printf '\n[Install]\nWantedBy=multi-user.target\n'
    } >/etc/systemd/system/pb-pod-routes.service
    systemctl daemon-reload && systemctl enable --now pb-pod-routes.service || true
  fi
  # The cluster CA `make vagrant-prep` made on the host beside each node's certificates (pb_setup.py node-pki).
  args=(control-plane "${common[@]}" --advertise-address "$IP" --ca-dir "$A/pki")
  [ -z "$NODES" ] || args+=(--nodes "$NODES")
  "$SRC/deploy/install.sh" "${args[@]}"
  # The admin kubeconfig for the vagrant user (root's ~/.kube/config links to it): kubectl and pbctl read it.
  install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.kube
  install -m 0600 -o vagrant -g vagrant /etc/pybernetes/admin.conf /home/vagrant/.kube/config
  timeout 120 /opt/pybernetes/bin/pbctl get nodes || true
  if systemctl is-active -q pb-prometheus 2>/dev/null; then
    echo "==> Prometheus: http://$IP:9090/consoles/pybernetes-overview.html (vagrant ssh control-plane -- -L 9090:127.0.0.1:9090)"
  fi
else
  # --server is the REST API (6443); the node's kubeconfigs name gRPC at $CP_IP:6442.
  # --registry: pb-registry on the node's 127.0.0.1:5000 serves the archive's images, which containerd's
  # docker.io / registry.k8s.io / k8s.gcr.io mirrors point at (`image: nginx:1.15.4` runs unmodified).
  # The node's own certificates only (kubelet: system:node:$NAME; proxy: system:kube-proxy) and the CA.
  N=$A/nodes/$NAME
  "$SRC/deploy/install.sh" node "${common[@]}" --name "$NAME" --node-ip "$IP" --server "$CP_IP:6443" \
    --ca-file "$N/ca.crt" --client-cert "$N/kubelet.crt" --client-key "$N/kubelet.key" \
    --proxy-client-cert "$N/proxy.crt" --proxy-client-key "$N/proxy.key" \
    --images "$A/images/lab-images.oci.tar" --registry
fi
echo "==> $NAME provisioned in $(( $(date +%s) - t0 )) s"
