"""x509 client certificates against a real apiserver over real TLS: the admin by admin.conf's certificate over
REST (the real kubectl) and gRPC (pbctl); a certificate from another CA, a self-signed one and an expired one
refused at the handshake on both ports (python's ssl, kubectl, pbctl); a component's certificate
authenticates as its CN in its O groups (the apiserver's authentication log line)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from pathlib import Path

import pytest

from pbctl.main import run as pbctl
from pybernetes import errors, pkiutil, rpc, tls
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.tls import CertPair
from tests import pki
from tests.integration.conftest import ApiServer
from tests.integration.test_rest_kubectl import Kubectl

pytestmark = pytest.mark.integration


def kubeconfig(srv: ApiServer, path: Path, pair: CertPair, *, by_path: bool = False) -> Path:
    """A kubeconfig for `srv` whose user is `pair` alone (no token)."""
    client_config.write_kubeconfig(path, srv.https_server, srv.address, "", (srv.pki / "ca.crt").read_bytes(),
                                   cert=client_config.ClientCert(pair.cert, pair.key, by_path=by_path))
    return path


def bad_certs(srv: ApiServer, d: Path) -> dict[str, CertPair]:
    """Three certificates claiming the admin's name and group that the apiserver must refuse."""
    return {"foreign-ca": pki.client_cert(d, "foreign", tls.ADMIN_USER, [tls.MASTERS_GROUP], ca_dir=d / "other-ca"),
            "self-signed": pki.client_cert(d, "self", tls.ADMIN_USER, [tls.MASTERS_GROUP]),
            "expired": pki.expired(d, "expired", tls.ADMIN_USER, [tls.MASTERS_GROUP], srv.pki)}


async def rest_get(srv: ApiServer, pair: CertPair | None, path: str = "/api/v1/namespaces",
                   token: str = "") -> bytes:
    """One raw HTTPS request with python's ssl presenting `pair` (and `token`): the response's status line.
    Blocking sockets in a thread (the apiserver runs on this loop): a TLS alert surfaces as ssl.SSLError
    naming its cause, where asyncio's transport would turn it into a bare EOF."""
    ctx = tls.client_context(srv.pki / "ca.crt", pair)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""

    def get() -> bytes:
        with socket.create_connection(("127.0.0.1", srv.cfg.secure_port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n".encode())
            return s.makefile("rb").readline()

    return await asyncio.to_thread(get)


async def test_admin_by_client_certificate_over_rest_and_grpc(https_apiserver: ApiServer, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    srv = https_apiserver
    conf = client_config.load(str(srv.admin_conf))
    assert conf.token == "" and b"BEGIN CERTIFICATE" in conf.cert_pem  # kubeadm's admin.conf: a certificate
    # REST: python's ssl and the real kubectl, no token anywhere.
    assert (await rest_get(srv, CertPair(srv.pki / "admin.crt", srv.pki / "admin.key"))).startswith(b"HTTP/1.1 200")
    assert (await rest_get(srv, None)).startswith(b"HTTP/1.1 401")  # no certificate, no token: 401
    kubectl = Kubectl(srv, tmp_path / "home")
    _, out, _ = await kubectl.run("get", "namespaces", "-o", "name")
    assert "namespace/kube-system" in out.split()
    await kubectl.run("create", "-f", kubectl.file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                               "  name: by-cert\ndata: {k: v}\n"))
    # gRPC: pbctl with the same file.
    assert await pbctl(["--kubeconfig", str(srv.admin_conf), "get", "configmap", "by-cert", "-o", "name"]) == 0
    assert capsys.readouterr().out.strip() == "configmap/by-cert"
    # Bearer tokens keep working over REST (the tokens file's admin).
    assert (await rest_get(srv, None, token=srv.token)).startswith(b"HTTP/1.1 200")


async def test_wrong_certificates_are_refused_at_the_handshake(https_apiserver: ApiServer, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    srv = https_apiserver
    kubectl = Kubectl(srv, tmp_path / "home")
    for what, pair in bad_certs(srv, tmp_path).items():
        # REST, python's ssl: the server ends the connection in the handshake; no HTTP response ever comes.
        assert await rest_get(srv, pair) == b"", what
        # REST, the real kubectl.
        kubectl.kubeconfig = kubeconfig(srv, tmp_path / f"{what}.conf", pair)
        # (asyncio's TLS server closes without sending the alert: kubectl sees the connection end, no response.)
        rc, out, err = await kubectl.run("get", "--raw", "/api/v1/namespaces", "--request-timeout=10s", ok=False)
        assert rc != 0 and out == "", (what, err)
        assert any(m in err for m in ("EOF", "connection reset by peer", "server closed idle connection")), (what, err)
        # gRPC: the client library (its TLS built by hand: past the kubeconfig's own expiry check), and pbctl.
        conf = client_config.load(str(kubectl.kubeconfig))
        async with Client(srv.address, tls=rpc.ChannelTLS(conf.ca_pem, conf.cert_pem, conf.key_pem), timeout=5) as c:
            with pytest.raises(errors.Unavailable):
                await c.list(core.Namespace)
        assert await pbctl(["--kubeconfig", str(kubectl.kubeconfig), "get", "namespaces"]) == 1
        message = capsys.readouterr().err
        if what == "expired":  # refused before connecting, saying what expired
            assert f"the client certificate of CN={tls.ADMIN_USER},O={tls.MASTERS_GROUP} is valid from" in message
            assert "not now: the apiserver refuses it" in message
        else:
            assert "was refused" in message, (what, message)
    # The same name and group signed by the cluster CA: accepted on both (the refusals were the certificates').
    good = pki.client_cert(tmp_path, "good", tls.ADMIN_USER, [tls.MASTERS_GROUP], ca_dir=srv.pki)
    assert (await rest_get(srv, good)).startswith(b"HTTP/1.1 200")
    async with Client(srv.address, tls=client_config.load(str(kubeconfig(srv, tmp_path / "good.conf", good))).tls(),
                      timeout=5) as c:
        assert "kube-system" in {n.metadata.name for n in (await c.list(core.Namespace)).items}


async def test_component_certificate_authenticates_as_its_cn_and_groups(
        https_apiserver: ApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    srv = https_apiserver
    caplog.set_level(logging.DEBUG, logger="pybernetes.apiserver.auth")
    node = pkiutil.ensure_client_cert(srv.pki, "kubelet-node-1", "system:node:node-1", [tls.NODES_GROUP])
    sched = pkiutil.ensure_client_cert(srv.pki, "scheduler", "system:kube-scheduler")
    assert oct(os.stat(node.key).st_mode & 0o777) == "0o600"
    # gRPC, a kubeconfig naming the files (as the lab's), and REST, python's ssl.
    async with Client.from_config(client_config.load(str(kubeconfig(srv, tmp_path / "k.conf", node, by_path=True))),
                                  timeout=5) as c:
        await c.list(core.Pod, namespace="default", field_selector="spec.nodeName=node-1")  # what a node may list
    assert (await rest_get(srv, sched, "/api/v1/namespaces/default/pods")).startswith(b"HTTP/1.1 200")
    logged = [r.getMessage() for r in caplog.records if r.name == "pybernetes.apiserver.auth"]
    assert "authenticated user=system:node:node-1 groups=system:nodes by=X509Authenticator" in logged
    assert "authenticated user=system:kube-scheduler groups= by=X509Authenticator" in logged
    # Over gRPC a token sent with the call names the caller; the certificate only opens the connection.
    caplog.clear()
    async with srv.new_client(timeout=5) as c:
        await c.list(core.Pod, namespace="default")
    assert "authenticated user=system:admin groups=system:masters by=TokenAuthenticator" in [
        r.getMessage() for r in caplog.records if r.name == "pybernetes.apiserver.auth"]


async def test_renewed_certificates_are_used_after_a_restart(https_apiserver: ApiServer,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    srv = https_apiserver
    before = {p: (srv.pki / f"{p}.crt").read_bytes() for p in ("apiserver", "admin")}
    assert await pbctl(["certs", "check-expiration", "--cert-dir", str(srv.pki)]) == 0
    table = capsys.readouterr().out
    assert "CERTIFICATE AUTHORITY" in table and any(line.split()[:1] == ["apiserver"] and "364d" in line
                                                    for line in table.splitlines())
    assert await pbctl(["certs", "renew", "all", "--cert-dir", str(srv.pki)]) == 0
    assert "certificate apiserver renewed" in capsys.readouterr().out
    after = {p: (srv.pki / f"{p}.crt").read_bytes() for p in before}
    assert all(before[p] != after[p] for p in before)
    old, new = (tls.CertPair(srv.pki / "apiserver.crt", srv.pki / "apiserver.key").der(),
                pkiutil.inventory(srv.pki))
    assert tls.identity(old) == (tls.APISERVER_NAME, ())
    assert next(i for i in new if i.name == "apiserver").authority == "ca"
    await srv.restart()  # the apiserver serves the renewed certificate and rewrites admin.conf with the new admin's
    served = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", srv.cfg.secure_port))
    assert served.encode().strip() == after["apiserver"].strip()
    assert client_config.load(str(srv.admin_conf)).cert_pem == after["admin"]
    async with Client.from_config(client_config.load(str(srv.admin_conf)), timeout=5) as c:
        await c.list(core.Namespace)
