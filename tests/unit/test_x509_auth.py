"""x509 authentication and client certificates in kubeconfigs: the authenticator reads CN and O as Kubernetes
does, the two front ends' chains order certificate and token as documented, a kubeconfig's
client-certificate(-data)/client-key(-data) reach the gRPC channel's TLS, the lab issues one identity per
component, `pbctl certs` lists and renews a pki dir."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
import yaml

from lab import control_plane
from lab.topology import Plan
from pbctl.verbs import certs
from pybernetes import errors, pkiutil, tls
from pybernetes.client import config as client_config
from services.apiserver.auth import (
    Credentials,
    TokenAuthenticator,
    User,
    X509Authenticator,
    grpc_authenticator,
    rest_authenticator,
)
from tests import pki


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    pkiutil.ensure_apiserver_pki(d, ["10.0.0.1"])
    return d


async def test_x509_user_is_cn_groups_are_o(pki_dir: Path) -> None:
    pair = pkiutil.ensure_client_cert(pki_dir, "kubelet-n1", "system:node:n1", ["system:nodes", "extra"])
    user = await X509Authenticator().authenticate(Credentials(client_cert=pair.der()))
    assert user == User("system:node:n1", "", ("system:nodes", "extra"))
    assert await X509Authenticator().authenticate(Credentials(authorization="Bearer x")) is None
    nameless = pki.client_cert(pki_dir, "nameless", "", ["g"], ca_dir=pki_dir)
    with pytest.raises(errors.Unauthorized, match="no common name"):
        await X509Authenticator().authenticate(Credentials(client_cert=nameless.der()))


async def test_an_unreadable_subject_is_401_with_the_reason(pki_dir: Path) -> None:
    der = pkiutil.ensure_client_cert(pki_dir, "odd", "oddname").der()
    odd = der.replace(b"\x0c\x07oddname", b"\x04\x07oddname")  # the CN an OCTET STRING: no CA makes one
    assert odd != der
    with pytest.raises(errors.Unauthorized, match="subject cannot be read: subject CN: unexpected string type"):
        await X509Authenticator().authenticate(Credentials(client_cert=odd))


async def test_chains_order_certificate_and_token(pki_dir: Path) -> None:
    tokens = TokenAuthenticator({"t": User("viewer")})
    cert = pkiutil.ensure_client_cert(pki_dir, "admin", tls.ADMIN_USER, [tls.MASTERS_GROUP]).der()
    both = Credentials(authorization="Bearer t", client_cert=cert)
    assert (await rest_authenticator([tokens]).authenticate(both)).name == tls.ADMIN_USER  # Kubernetes' order
    assert (await grpc_authenticator([tokens]).authenticate(both)).name == "viewer"  # the call's token
    only_cert = Credentials(client_cert=cert)
    assert (await grpc_authenticator([tokens]).authenticate(only_cert)).groups == (tls.MASTERS_GROUP,)
    with pytest.raises(errors.Unauthorized, match="unknown credentials"):
        await rest_authenticator([tokens]).authenticate(Credentials(authorization="Bearer nope"))
    with pytest.raises(errors.Unauthorized, match="credentials are required"):
        await grpc_authenticator([tokens]).authenticate(Credentials())


def test_kubeconfig_client_certificate_data_and_files(pki_dir: Path, tmp_path: Path) -> None:
    pair = pkiutil.ensure_client_cert(pki_dir, "scheduler", "system:kube-scheduler")
    ca = (pki_dir / "ca.crt").read_bytes()
    for by_path in (False, True):
        path = tmp_path / f"k-{by_path}.conf"
        client_config.write_kubeconfig(path, "https://h:6443", "h:6442", "", ca,
                                       cert=client_config.ClientCert(pair.cert, pair.key, by_path=by_path))
        user = yaml.safe_load(path.read_text())["users"][0]["user"]
        assert set(user) == ({"client-certificate", "client-key"} if by_path else
                             {"client-certificate-data", "client-key-data"})
        cfg = client_config.load(str(path))
        assert cfg.token == "" and cfg.cert_pem == pair.cert.read_bytes() and cfg.key_pem == pair.key.read_bytes()
        t = cfg.tls()
        assert t is not None and t.ca_pem == ca and t.cert_pem == cfg.cert_pem and t.key_pem == cfg.key_pem
    assert path.stat().st_mode & 0o777 == 0o600


def test_kubeconfig_bad_certificate_entries_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    client_config.write_kubeconfig(path, "https://h:6443", "h:6442", "tok", b"")
    assert client_config.load(str(path)).tls() is None  # no CA, no certificate: plaintext gRPC
    doc = yaml.safe_load(path.read_text())
    doc["users"][0]["user"]["client-certificate-data"] = "%%% not base64"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(errors.ConfigError, match="client-certificate-data: not base64"):
        client_config.load(str(path))
    doc["users"][0]["user"] = {"client-certificate": str(tmp_path / "missing.crt")}
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(errors.ConfigError, match=r"client-certificate: cannot read .*missing\.crt"):
        client_config.load(str(path))
    data = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    doc["users"][0]["user"] = {"client-certificate-data": data, "client-key-data": data}
    path.write_text(yaml.safe_dump(doc))
    assert client_config.load(str(path)).cert_pem.startswith(b"-----BEGIN")


def test_lab_issues_one_identity_per_component(tmp_path: Path) -> None:
    plan = Plan(tmp_path / "lab", workers=2)
    control_plane.write_credentials(plan)
    pki_dir = control_plane.pki_dir(plan)
    seen = {}
    for who, user, groups in control_plane.component_users(plan):
        cfg = client_config.load(str(plan.config_file(who)))
        assert cfg.token == "" and cfg.tls() is not None
        seen[who] = tls.identity(tls.CertPair(pki_dir / f"{who}.crt", pki_dir / f"{who}.key").der())
        assert seen[who] == (user, tuple(groups))
        doc = yaml.safe_load(plan.config_file(who).read_text())
        assert doc["users"][0]["user"]["client-key"] == str(pki_dir / f"{who}.key")  # its own key only
    names = [n.name for n in plan.nodes]
    assert seen["scheduler"] == ("system:kube-scheduler", ())
    assert seen["controller-manager"] == ("system:kube-controller-manager", ())
    assert seen["proxy"] == ("system:kube-proxy", ())
    assert {seen[f"kubelet-{n}"] for n in names} == {(f"system:node:{n}", ("system:nodes",)) for n in names}


def test_certs_inventory_and_renew(pki_dir: Path) -> None:
    pkiutil.ensure_client_cert(pki_dir, "admin", tls.ADMIN_USER, [tls.MASTERS_GROUP])
    pkiutil.ensure_ca(pki_dir, "etcd/ca", tls.ETCD_CA_NAME)
    pkiutil.ensure_client_cert(pki_dir, "apiserver-etcd-client", "kube-apiserver-etcd-client", ca_stem="etcd/ca")
    inv = {i.name: i for i in pkiutil.inventory(pki_dir)}
    assert {n for n, i in inv.items() if i.is_ca} == {"ca", "etcd/ca"}
    assert inv["apiserver"].authority == "ca" and inv["apiserver-etcd-client"].authority == "etcd-ca"
    before = inv["apiserver"].cert
    renewed = pkiutil.renew(pki_dir, "apiserver").load()
    assert renewed.serial_number != before.serial_number
    assert renewed.subject == before.subject and renewed.issuer == before.issuer
    san = x509_san(before), x509_san(renewed)
    assert san[0] == san[1] and "10.0.0.1" in san[1]
    assert pkiutil.renew(pki_dir, "apiserver-etcd-client").load().issuer == inv["etcd/ca"].cert.subject
    with pytest.raises(ValueError, match="certificate authority"):
        pkiutil.renew(pki_dir, "ca")
    with pytest.raises(FileNotFoundError):
        pkiutil.renew(pki_dir, "nope")


def x509_san(cert: object) -> list[str]:
    from cryptography import x509

    assert isinstance(cert, x509.Certificate)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [*san.get_values_for_type(x509.DNSName), *(str(i) for i in san.get_values_for_type(x509.IPAddress))]


def test_residual_time_as_kubeadm_prints_it() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert certs.residual(now + dt.timedelta(days=3650), now) == "10y"
    assert certs.residual(now + dt.timedelta(days=364, hours=23), now) == "364d"
    assert certs.residual(now + dt.timedelta(hours=5), now) == "5h"
    assert certs.residual(now - dt.timedelta(seconds=1), now) == "<invalid>"
