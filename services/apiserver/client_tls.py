"""The apiserver's TLS as a client, from its flags: towards etcd (--etcd-cafile, --etcd-certfile,
--etcd-keyfile, for https --etcd-servers; the embedded etcd brings its own) and towards kubelets
(--kubelet-client-certificate/--kubelet-client-key, else apiserver-kubelet-client made under the pki dir;
--kubelet-certificate-authority). Bad combinations are ConfigErrors naming the flag.
"""

from __future__ import annotations

from pathlib import Path

from pybernetes import errors, pkiutil, tls

from .kubelet_proxy import KubeletTLS
from .storage import etcd as storage_etcd
from .storage.etcd import EtcdTLS


def _exist(*given: tuple[str, Path | None]) -> None:
    for flag, path in given:
        if path is not None and not path.is_file():
            raise errors.ConfigError(f"{flag}: {path}: no such file")


def etcd_client_tls(servers: list[str], ca: Path | None, cert: Path | None, key: Path | None) -> EtcdTLS | None:
    """What https --etcd-servers need (the CA; the client certificate when etcd asks for one); None for http
    servers or the embedded etcd (no servers)."""
    if not servers or not storage_etcd.secure(servers):
        return None
    if ca is None:
        raise errors.ConfigError("https --etcd-servers need --etcd-cafile (and --etcd-certfile/--etcd-keyfile "
                                 "when etcd asks for a client certificate)")
    if (cert is None) != (key is None):
        raise errors.ConfigError("--etcd-certfile and --etcd-keyfile go together")
    _exist(("--etcd-cafile", ca), ("--etcd-certfile", cert), ("--etcd-keyfile", key))
    return EtcdTLS(ca, tls.CertPair(cert, key) if cert and key else None)


def kubelet_client_tls(pki_dir: Path, cert: Path | None, key: Path | None, ca: Path | None) -> KubeletTLS:
    """The apiserver's client certificate towards kubelets (given, else apiserver-kubelet-client under the pki
    dir, made on first start) and the CA it checks their serving certificates against."""
    if (cert is None) != (key is None):
        raise errors.ConfigError("--kubelet-client-certificate and --kubelet-client-key go together")
    pair = tls.CertPair(cert, key) if cert and key else pkiutil.ensure_kubelet_client_cert(pki_dir)
    _exist(("--kubelet-client-certificate", pair.cert), ("--kubelet-client-key", pair.key),
           ("--kubelet-certificate-authority", ca))
    return KubeletTLS(pair, ca)
