"""bench.density's credentials: each component runs as itself, as in the lab. Every hollow kubelet has a kubeconfig
of its own (found through bench.hollow's `{node}` template) whose client certificate names system:node:<name> in
system:nodes, the scheduler and controller manager theirs, all signed by the apiserver's cluster CA and naming the
admin.conf's servers."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from bench.density import credentials
from bench.hollow import node_kubeconfig, node_name
from pybernetes import certinfo, pkiutil, tls
from pybernetes.client import config as client_config
from pybernetes.client.config import ClientConfig


def who(path: str | Path) -> tuple[ClientConfig, tuple[str, tuple[str, ...]]]:
    cfg = client_config.load(str(path))
    return cfg, tls.identity(certinfo.pem_to_der(cfg.cert_pem))


def admin(data: Path) -> ClientConfig:
    """The admin.conf pb-apiserver writes in `data` at start (its CA made first, as the apiserver makes it)."""
    pkiutil.ensure_apiserver_pki(data / "pki", ["127.0.0.1"])
    pair = pkiutil.ensure_client_cert(data / "pki", "admin", tls.ADMIN_USER, [tls.MASTERS_GROUP])
    client_config.write_kubeconfig(data / "admin.conf", "https://127.0.0.1:6443", "127.0.0.1:6442", "",
                                   (data / "pki" / "ca.crt").read_bytes(),
                                   cert=client_config.ClientCert(pair.cert, pair.key))
    return client_config.load(str(data / "admin.conf"))


def test_each_hollow_kubelet_is_its_own_node(tmp_path: Path) -> None:
    creds = credentials(tmp_path, admin(tmp_path), 3, proxy=False)
    seen = set()
    for i in range(3):
        name = node_name("hollow", i)
        cfg, ident = who(node_kubeconfig(creds.kubelets, name))
        assert ident == (f"system:node:{name}", (tls.NODES_GROUP,))
        assert cfg.server == "127.0.0.1:6442" and cfg.https_server == "https://127.0.0.1:6443"
        assert cfg.ca_pem == (tmp_path / "pki" / "ca.crt").read_bytes()
        seen.add(cfg.cert_pem)
    assert len(seen) == 3  # a certificate per node, none shared
    assert not Path(node_kubeconfig(creds.kubelets, node_name("hollow", 3))).exists()
    assert creds.proxy is None


def test_control_plane_components_run_as_themselves(tmp_path: Path) -> None:
    creds = credentials(tmp_path, admin(tmp_path), 1, proxy=True)
    assert who(creds.scheduler)[1] == ("system:kube-scheduler", ())
    assert who(creds.controller_manager)[1] == ("system:kube-controller-manager", ())
    assert creds.proxy is not None and who(creds.proxy)[1] == ("system:kube-proxy", ())
    ca = x509.load_pem_x509_certificate((tmp_path / "pki" / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate(who(creds.scheduler)[0].cert_pem)
    cert.verify_directly_issued_by(ca)  # signed by the apiserver's cluster CA, which it trusts for clients


def test_node_kubeconfig_without_template_is_shared() -> None:
    assert node_kubeconfig("/x/kubelet-{node}.conf", "hollow-00007") == "/x/kubelet-hollow-00007.conf"
    assert node_kubeconfig("/x/admin.conf", "hollow-00007") == "/x/admin.conf"
