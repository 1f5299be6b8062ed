#!/usr/bin/env bash
# Build the offline Vagrant box `pybernetes/debian12` (libvirt provider) from the apt mirror this host
# uses; nothing comes from Vagrant Cloud or any other website.
#
#   deploy/vagrant/build-box.sh [OUTDIR]        (root; default OUTDIR deploy/vagrant/box)
#
# Steps: mmdebstrap a Debian 12 rootfs with a kernel, systemd, ssh, the vagrant user (Vagrant's own
# insecure public key, from the installed vagrant package) and every apt package pybernetes needs
# (deploy/install.sh's lists), so provisioning needs no network; `mkfs.ext4 -d` turns the directory into a
# filesystem image without mounting anything; qemu-img makes it a qcow2; the kernel and initrd go
# beside it, booted directly by libvirt (libvirt.kernel / initrd / cmd_line in the box's Vagrantfile: no
# bootloader, no partition table). Then `vagrant box add --name pybernetes/debian12` unless PB_NO_ADD=1.
#
# Environment: PB_MIRROR (default: the host's first Debian URI), PB_SUITE (bookworm), PB_DISK_GB (20),
# PB_BOX_NAME (pybernetes/debian12), PB_NO_ADD=1 (build only).
# The mmdebstrap hooks are single-quoted on purpose: mmdebstrap passes the rootfs as their $1.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(mkdir -p "${1:-deploy/vagrant/box}" && cd "${1:-deploy/vagrant/box}" && pwd)
SUITE=${PB_SUITE:-bookworm}
DISK_GB=${PB_DISK_GB:-20}
NAME=${PB_BOX_NAME:-pybernetes/debian12}
[ "$(id -u)" = 0 ] || { echo "build-box.sh: run as root" >&2; exit 1; }
for tool in mmdebstrap mkfs.ext4 qemu-img; do
  command -v "$tool" >/dev/null || { echo "build-box.sh: needs $tool (apt-get install mmdebstrap e2fsprogs qemu-utils)" >&2; exit 1; }
done

host_mirror() {
  local uri
  uri=$(grep -hE '^\s*URIs:\s*http' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -m1 -i 'debian/*$' | awk '{print $2}' || true)
  [ -n "$uri" ] || uri=$(grep -hE '^\s*deb\s+http\S+/debian/?\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${PB_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR%/}
SECURITY=${PB_SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}

PUBKEY=${PB_VAGRANT_PUBKEY:-$(find /usr/share/rubygems-integration /usr/lib/ruby /opt/vagrant -path '*keys/vagrant.pub' 2>/dev/null | head -1 || true)}
[ -f "$PUBKEY" ] || { echo "build-box.sh: vagrant's insecure public key (keys/vagrant.pub) not found; install vagrant or set PB_VAGRANT_PUBKEY" >&2; exit 1; }

# Base system + what deploy/install.sh installs for both roles (+ registry tools), so nothing is fetched later.
PKGS=(systemd-sysv dbus linux-image-amd64 initramfs-tools openssh-server sudo rsync ifupdown isc-dhcp-client
      procps less kmod ca-certificates python3 python3-venv iproute2 iptables nftables conntrack curl
      etcd-server etcd-client containerd runc containernetworking-plugins netcat-openbsd iputils-ping
      docker-registry skopeo busybox-static)
PKGS+=(prometheus)  # install.sh control-plane --prometheus (the Vagrant lab's default)
WORK=$(mktemp -d /var/tmp/pb-box.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs
t0=$(date +%s)
echo "==> mmdebstrap $SUITE from $MIRROR (+ $SECURITY) -> $ROOTFS"
mmdebstrap --variant=apt --mode=root --include="$(IFS=,; echo "${PKGS[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='echo pybernetes > "$1/etc/hostname"' \
  --customize-hook='printf "/dev/vda / ext4 defaults,errors=remount-ro 0 1\n" > "$1/etc/fstab"' \
  --customize-hook='printf "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n\nsource /etc/network/interfaces.d/*\n" > "$1/etc/network/interfaces"' \
  --customize-hook='chroot "$1" useradd -m -s /bin/bash -G sudo vagrant' \
  --customize-hook='echo vagrant:vagrant | chroot "$1" chpasswd' \
  --customize-hook='echo "vagrant ALL=(ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/vagrant"; chmod 0440 "$1/etc/sudoers.d/vagrant"' \
  --customize-hook="mkdir -p \"\$1/home/vagrant/.ssh\"; cp '$PUBKEY' \"\$1/home/vagrant/.ssh/authorized_keys\"" \
  --customize-hook='chmod 700 "$1/home/vagrant/.ssh"; chmod 600 "$1/home/vagrant/.ssh/authorized_keys"; chroot "$1" chown -R vagrant:vagrant /home/vagrant/.ssh' \
  --customize-hook='echo "UseDNS no" > "$1/etc/ssh/sshd_config.d/vagrant.conf"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='printf "[Unit]\nDescription=SSH host keys\nBefore=ssh.service\nConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n[Install]\nWantedBy=multi-user.target\n" > "$1/etc/systemd/system/ssh-hostkeys.service"' \
  --customize-hook='chroot "$1" systemctl enable ssh-hostkeys.service ssh.service' \
  --customize-hook='chroot "$1" systemctl disable etcd.service containerd.service docker-registry.service || true' \
  --customize-hook='chroot "$1" systemctl disable prometheus.service || true' \
  --customize-hook='truncate -s 0 "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"' \
  --customize-hook='chroot "$1" apt-get clean' \
  "$SUITE" "$ROOTFS" \
  "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY $SUITE-security main"
echo "==> rootfs $(du -sh "$ROOTFS" | cut -f1) in $(( $(date +%s) - t0 )) s"

KVER=$(find "$ROOTFS/boot" -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
mkdir -p "$OUT"
cp "$ROOTFS/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
cp "$ROOTFS/boot/initrd.img-$KVER" "$OUT/initrd.img"
chmod 0644 "$OUT/vmlinuz" "$OUT/initrd.img"
echo "==> filesystem image (ext4 from the directory, ${DISK_GB} GiB virtual)"
truncate -s "${DISK_GB}G" "$WORK/disk.raw"
mkfs.ext4 -q -F -L pbroot -d "$ROOTFS" "$WORK/disk.raw"
qemu-img convert -c -O qcow2 "$WORK/disk.raw" "$OUT/box.img"
cat >"$OUT/metadata.json" <<EOF
{"provider": "libvirt", "format": "qcow2", "virtual_size": $DISK_GB}
EOF
cat >"$OUT/Vagrantfile" <<'EOF'
# pybernetes/debian12: Debian 12 with pybernetes' apt dependencies, booted directly (no bootloader).
Vagrant.configure("2") do |config|
  config.ssh.insert_key = true
  config.vm.provider :libvirt do |lv|
    box_dir = File.dirname(__FILE__)
    lv.kernel = File.join(box_dir, "vmlinuz")
    lv.initrd = File.join(box_dir, "initrd.img")
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 biosdevname=0 quiet"
    lv.disk_bus = "virtio"
  end
end
EOF
echo "==> packing $OUT/pybernetes-debian12.box"
tar -C "$OUT" -czf "$OUT/pybernetes-debian12.box" metadata.json Vagrantfile box.img vmlinuz initrd.img
ls -la "$OUT"
if [ "${PB_NO_ADD:-0}" != 1 ]; then
  echo "==> vagrant box add --name $NAME"
  vagrant box add --force --name "$NAME" "$OUT/pybernetes-debian12.box"
fi
echo "==> box built in $(( $(date +%s) - t0 )) s (kernel $KVER)"
