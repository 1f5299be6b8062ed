"""Network namespaces for the lab and the test fixtures: hosts joined by a bridge with no uplink.

Every namespace made here is named `pb-...` and has no default route, so pod and service ranges live
only inside them. Commands enter only the network namespace (`nsenter --net=`): `ip netns exec` would
also remount /sys and hide the cgroup mount that runc needs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

NETNS_DIR = "/run/netns"


def run(cmd: Sequence[str], *, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, input=input)


def nsenter(netns: str, cmd: Sequence[str]) -> list[str]:
    """The command line that runs `cmd` inside the network namespace `netns` only."""
    return ["nsenter", f"--net={NETNS_DIR}/{netns}", *cmd]


def exists(netns: str) -> bool:
    return netns in list_namespaces()


def list_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def link_exists(name: str, netns: str | None = None) -> bool:
    cmd = ["ip", "link", "show", name]
    return run(nsenter(netns, cmd) if netns else cmd, check=False).returncode == 0


@dataclass(frozen=True)
class Host:
    """One lab host: a namespace with one leg on the bridge."""

    netns: str
    address: str  # with prefix, e.g. 172.30.0.11/24
    ifname: str = "eth0"

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    def cmd(self, *argv: str) -> list[str]:
        return nsenter(self.netns, argv)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(self.cmd(*argv), check=check)


@dataclass(frozen=True)
class Network:
    """A bridge in its own namespace (so the root namespace gets nothing), and hosts attached to it."""

    name: str  # short prefix, e.g. "pb-t1"; the bridge namespace is "<name>-br"

    @property
    def bridge_netns(self) -> str:
        return f"{self.name}-br"

    def create(self) -> None:
        if not exists(self.bridge_netns):
            run(["ip", "netns", "add", self.bridge_netns])
        ns = self.bridge_netns
        run(nsenter(ns, ["ip", "link", "set", "lo", "up"]))
        if not link_exists("br0", ns):
            run(nsenter(ns, ["ip", "link", "add", "br0", "type", "bridge"]))
        run(nsenter(ns, ["ip", "link", "set", "br0", "up"]))

    def add_host(self, netns: str, address: str, *, ifname: str = "eth0") -> Host:
        """Create namespace `netns` (if needed) with a veth `ifname` on the bridge. Idempotent."""
        if not exists(netns):
            run(["ip", "netns", "add", netns])
        run(nsenter(netns, ["ip", "link", "set", "lo", "up"]))
        if not link_exists(ifname, netns):
            # Create the pair inside the bridge namespace, then move the host end: nothing ever
            # appears in the root namespace.
            peer = f"v-{netns}"[-15:]
            br = self.bridge_netns
            run(nsenter(br, ["ip", "link", "del", peer]), check=False)
            run(nsenter(br, ["ip", "link", "add", peer, "type", "veth", "peer", "name", ifname]))
            run(nsenter(br, ["ip", "link", "set", ifname, "netns", f"{NETNS_DIR}/{netns}"]))
            run(nsenter(br, ["ip", "link", "set", peer, "master", "br0", "up"]))
            run(nsenter(netns, ["ip", "addr", "add", address, "dev", ifname]))
        run(nsenter(netns, ["ip", "link", "set", ifname, "up"]))
        return Host(netns=netns, address=address, ifname=ifname)

    def destroy(self, hosts: Sequence[str] = ()) -> None:
        for ns in [*hosts, self.bridge_netns]:
            delete(ns)


def delete(netns: str) -> None:
    """Delete a namespace; its veths and the rules inside it go with it."""
    if exists(netns):
        run(["ip", "netns", "delete", netns], check=False)
