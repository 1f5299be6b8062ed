"""A node containerd's registry config: config_path in config.toml, one hosts.toml per registry that
sends docker.io, registry.k8s.io and k8s.gcr.io to the lab registry (and only there); and the image
catalog those mirrors serve (lab.images)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from lab import images
from lab.image_registry import registry_path
from node_agent.containerd import MIRRORED_REGISTRIES, Containerd, NodePaths, render_config, render_hosts, write_hosts


def test_config_points_cri_at_the_hosts_dir() -> None:
    paths = NodePaths(Path("/srv/node-1"))
    cfg = tomllib.loads(render_config(paths))
    registry = cfg["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    # containerd 1.6 refuses `mirrors` next to `config_path`: only the hosts dir is configured.
    assert registry == {"config_path": "/srv/node-1/certs.d"}
    assert paths.certs_dir == Path("/srv/node-1/certs.d")


def test_mirrored_registries_have_the_lab_registry_as_only_host() -> None:
    files = render_hosts("localhost:5000")
    assert set(files) == {"localhost:5000", "docker.io", "registry.k8s.io", "k8s.gcr.io"}
    assert MIRRORED_REGISTRIES == ("docker.io", "registry.k8s.io", "k8s.gcr.io")
    for name, text in files.items():
        hosts = tomllib.loads(text)
        # Server and host both the lab registry over plain http: no fallback to the real registry,
        # so a missing tag is the lab registry's not-found (and 1.6 requires a [host] table).
        assert hosts["server"] == "http://localhost:5000", name
        assert hosts["host"] == {"http://localhost:5000": {"capabilities": ["pull", "resolve"]}}, name


def test_hosts_follow_the_registry_address_and_list() -> None:
    files = render_hosts("127.0.0.1:5001", mirrored=("docker.io",))
    assert set(files) == {"127.0.0.1:5001", "docker.io"}
    assert tomllib.loads(files["docker.io"])["server"] == "http://127.0.0.1:5001"


def test_registry_served_from_an_endpoint(tmp_path: Path) -> None:
    """The lab's nodes keep the name localhost:5000 but pull from its registry's address (no forwarder)."""
    files = render_hosts("localhost:5000", endpoint="172.30.0.10:5000")
    assert set(files) == {"localhost:5000", *MIRRORED_REGISTRIES}
    for name, text in files.items():
        hosts = tomllib.loads(text)
        assert hosts["server"] == "http://172.30.0.10:5000", name
        assert hosts["host"] == {"http://172.30.0.10:5000": {"capabilities": ["pull", "resolve"]}}, name
    ctd = Containerd(tmp_path / "node", netns="pb-x", pod_cidr="10.244.9.0/24", registry_endpoint="172.30.0.10:5000")
    ctd.write_config()
    text = (ctd.paths.certs_dir / "localhost:5000" / "hosts.toml").read_text()
    assert tomllib.loads(text)["server"] == "http://172.30.0.10:5000"


def test_write_hosts_replaces_the_dir(tmp_path: Path) -> None:
    certs = tmp_path / "certs.d"
    (certs / "quay.io").mkdir(parents=True)
    (certs / "quay.io" / "hosts.toml").write_text('server = "https://stale"\n')
    write_hosts(certs)
    assert sorted(p.parent.name for p in certs.glob("*/hosts.toml")) == sorted(
        ["localhost:5000", *MIRRORED_REGISTRIES])
    assert tomllib.loads((certs / "docker.io" / "hosts.toml").read_text())["server"] == "http://localhost:5000"


def test_catalog_names_are_mirrored_and_explicit() -> None:
    by_name = {s.name: s for s in images.CATALOG}
    assert set(by_name) == {"busybox", "nginx", "python", "pause"}
    for spec in images.CATALOG:
        assert set(spec.upstream) <= set(MIRRORED_REGISTRIES), spec.name
        assert "latest" in spec.tags and len(set(spec.tags)) == len(spec.tags), spec.name
    names = {n for s in images.CATALOG for n in s.names()}
    for must in ("docker.io/library/nginx:1.14.2", "docker.io/library/nginx:1.15.4", "docker.io/library/nginx:1.25",
                 "docker.io/library/nginx:1.27", "docker.io/library/nginx:stable", "docker.io/library/nginx:alpine",
                 "docker.io/library/busybox:latest", "docker.io/library/busybox:1.28",
                 "docker.io/library/busybox:1.36", "docker.io/library/busybox:stable",
                 "docker.io/library/python:3", "docker.io/library/python:3.11", "docker.io/library/python:3.12",
                 "docker.io/library/python:slim", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.10",
                 "k8s.gcr.io/pause:3.9", images.BUSYBOX_IMAGE, images.PAUSE_IMAGE):
        assert must in names, must
    # What a mirrored request asks the lab registry for is what gets pushed there.
    refs = {r for s in images.CATALOG for r in s.registry_refs()}
    assert {registry_path(n) for n in names} == refs
    assert by_name["nginx"].cmd == ("nginx", "-g", "daemon off;")


def test_sockets_stay_short_whatever_the_node_dir() -> None:
    # containerd refuses a ttrpc socket path over 104 bytes; a deep --dir (pytest's, a user's) must not
    # reach it, and two node dirs must never share a socket.
    deep = NodePaths(Path("/tmp/pytest-of-root/pytest-10432/test_three_member_etcd0/lab/nodes/node-1/containerd"))
    other = NodePaths(Path("/tmp/pytest-of-root/pytest-10432/test_three_member_etcd0/lab/nodes/node-2/containerd"))
    assert len(str(deep.socket) + ".ttrpc") <= 104
    assert deep.socket != other.socket
    assert deep.socket == NodePaths(deep.base).socket  # stable: lab down finds what lab up started
    cfg = tomllib.loads(render_config(deep))
    assert cfg["grpc"]["address"] == str(deep.socket)
    assert cfg["ttrpc"]["address"] == str(deep.socket) + ".ttrpc"
