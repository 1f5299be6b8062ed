"""RBAC over real TLS against a real apiserver and etcd: an authorization matrix of users x verbs x resources x
namespaces, asked three ways that must agree with the expected table (printed): the real kubectl v1.33
(`auth can-i`, a SelfSubjectAccessReview over HTTPS), pbctl over gRPC (`auth can-i`), and, for reads, the
request itself over HTTPS (200 or a 403 with Kubernetes' message). Also whoami, can-i --list, impersonation,
and escalation prevention through the API."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pbctl.main import run as pbctl
from pybernetes import errors
from pybernetes.api import codec
from services.apiserver.storage.embedded import EmbeddedEtcd
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

KUBECTL = Path(sys.prefix) / "bin" / "kubectl"
G = "rbac.authorization.k8s.io"
SA = "system:serviceaccount:a:robot"
USERS: dict[str, tuple[str, ...]] = {
    "alice": ("dev",),  # view in namespace a
    "bob": (),  # edit cluster-wide
    SA: ("system:serviceaccounts", "system:serviceaccounts:a"),  # get configmap "settings" in a
}
ADMIN = "system:admin"
SCHED = "system:kube-scheduler"
PROXY = "system:kube-proxy"
CM = "system:kube-controller-manager"

# (verb, resource, name, namespace) -> the users allowed; everyone else is denied. system:admin (system:masters)
# is allowed everything.
MATRIX: list[tuple[tuple[str, str, str, str], set[str]]] = [
    (("get", "pods", "", "a"), {"alice", "bob", SCHED, CM}),
    (("list", "pods", "", "b"), {"bob", SCHED, CM}),
    (("get", "pods/log", "", "a"), {"alice", "bob", CM}),  # the garbage collector's get on */*
    (("create", "pods/exec", "", "a"), {"bob"}),
    (("create", "pods", "", "b"), {"bob", CM}),
    (("delete", "pods", "web", "a"), {"bob", CM}),
    (("create", "pods/binding", "", "a"), {SCHED}),
    (("patch", "pods/status", "", "a"), {SCHED, CM}),
    (("create", "deployments.apps", "", "a"), {"bob"}),
    (("update", "deployments.apps/scale", "", "b"), {"bob", CM}),
    (("get", "secrets", "", "a"), {"bob", CM}),
    (("get", "configmaps", "settings", "a"), {"alice", "bob", SA, CM}),
    (("get", "configmaps", "other", "a"), {"alice", "bob", CM}),
    (("list", "nodes", "", ""), {SCHED, PROXY, CM}),
    (("watch", "endpointslices.discovery.k8s.io", "", "b"), {"bob", PROXY, CM}),
    (("list", "services", "", "a"), {"alice", "bob", PROXY, CM}),
    (("create", "roles." + G, "", "a"), set()),
    (("create", "events", "", "b"), {"bob", SCHED, PROXY, CM}),
    (("update", "leases.coordination.k8s.io", "kube-scheduler", "kube-system"), {"bob", SCHED, PROXY, CM}),
    (("get", "/healthz", "", ""), {"alice", "bob", SA, SCHED, PROXY, CM}),
    (("get", "/metrics", "", ""), set()),
]


def _expected(users: list[str]) -> Iterator[tuple[str, tuple[str, str, str, str], bool]]:
    for check, allowed in MATRIX:
        for u in users:
            yield u, check, u == ADMIN or u in allowed


@pytest.fixture
async def rbac_apiserver(etcd: EmbeddedEtcd, tmp_path: Path) -> AsyncIterator[ApiServer]:
    srv = ApiServer(etcd, tmp_path / "apiserver")
    for name, groups in USERS.items():
        srv.add_user(name, groups)
    await srv.start()
    c = srv.client
    for doc in (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}},
        {"apiVersion": f"{G}/v1", "kind": "RoleBinding", "metadata": {"name": "alice-view", "namespace": "a"},
         "subjects": [{"kind": "User", "apiGroup": G, "name": "alice"}],
         "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"}},
        {"apiVersion": f"{G}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "bob-edit"},
         "subjects": [{"kind": "User", "apiGroup": G, "name": "bob"}],
         "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "edit"}},
        {"apiVersion": f"{G}/v1", "kind": "Role", "metadata": {"name": "settings-reader", "namespace": "a"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["settings"]}]},
        {"apiVersion": f"{G}/v1", "kind": "RoleBinding", "metadata": {"name": "robot", "namespace": "a"},
         "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
         "roleRef": {"apiGroup": G, "kind": "Role", "name": "settings-reader"}},
    ):
        await c.create(codec.parse_object(doc))
    await asyncio.sleep(0.3)  # the apiserver's watch cache catches up with the bindings
    try:
        yield srv
    finally:
        await srv.stop()


def _token(srv: ApiServer, user: str) -> str:
    return srv.token if user == ADMIN else srv.tokens[user]


async def _kubectl(srv: ApiServer, home: Path, user: str, *args: str) -> tuple[int, str, str]:
    if not KUBECTL.exists():
        pytest.fail(f"{KUBECTL} missing: run deploy/get-kubectl.sh (deploy/install-deps.sh does)")
    ca = srv.cfg.data_dir / "pki" / "ca.crt"
    argv = [str(KUBECTL), f"--server={srv.https_server}", f"--certificate-authority={ca}",
            f"--token={_token(srv, user)}", f"--cache-dir={home / 'cache'}", "--kubeconfig=/dev/null", *args]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE,
                                                env={"HOME": str(home), "PATH": os.environ.get("PATH", "")})
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def _pbctl(srv: ApiServer, user: str, *args: str) -> tuple[int, str, str]:
    """pbctl as `user`, over gRPC with TLS, from a kubeconfig of its own."""
    conf = srv.cfg.data_dir / f"{user.replace(':', '_')}.conf"
    if not conf.exists():
        srv.write_kubeconfig(conf, _token(srv, user))
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        code = await pbctl(["--config", str(conf), *args])
    return code, o.getvalue(), e.getvalue()


def _can_i_args(check: tuple[str, str, str, str], kubectl: bool) -> list[str]:
    """kubectl's form (`VERB TYPE[/NAME] --subresource=SUB`), or pbctl's other form (`VERB TYPE NAME`)."""
    verb, resource, name, ns = check
    resource, _, sub = resource.partition("/") if not resource.startswith("/") else (resource, "", "")
    target = [f"{resource}/{name}"] if kubectl and name else [resource, *([name] if name else [])]
    return ["auth", "can-i", verb, *target, *([f"--subresource={sub}"] if sub else []), *(["-n", ns] if ns else [])]


def _https(srv: ApiServer, user: str, path: str) -> tuple[int, dict[str, object]]:
    ctx = ssl.create_default_context(cafile=str(srv.cfg.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(srv.https_server + path, headers={"Authorization": f"Bearer {_token(srv, user)}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def test_authorization_matrix(rbac_apiserver: ApiServer, tmp_path: Path) -> None:
    srv = rbac_apiserver
    users = [ADMIN, "alice", "bob", SA, SCHED, PROXY, CM]
    rows: dict[tuple[str, str, str, str], dict[str, str]] = {}
    mismatches = []
    for user, check, want in _expected(users):
        k_code, k_out, k_err = await _kubectl(srv, tmp_path / "home", user, *_can_i_args(check, True))
        p_code, p_out, p_err = await _pbctl(srv, user, *_can_i_args(check, False))
        k_yes = k_code == 0 and k_out.strip() == "yes"
        p_yes = p_code == 0 and p_out.strip() == "yes"
        if not k_yes:
            assert k_code == 1 and k_out.strip() == "no", (user, check, k_code, k_out, k_err)
        if not p_yes:
            assert p_code == 1 and p_out.strip() == "no", (user, check, p_code, p_out, p_err)
        cell = ("yes" if want else "no") + ("" if k_yes == want and p_yes == want else "!")
        rows.setdefault(check, {})[user] = cell
        if k_yes != want or p_yes != want:
            mismatches.append((user, check, want, k_yes, p_yes))
    short = {ADMIN: "admin", SA: "sa:a:robot", SCHED: "scheduler", PROXY: "kube-proxy", CM: "ctrl-mgr"}
    print("\nauthorization matrix (kubectl over HTTPS and pbctl over gRPC agree unless marked !)")
    head = ["verb resource [name] -n ns".ljust(58)] + [short.get(u, u).ljust(10) for u in users]
    print(" ".join(head))
    for (verb, res, name, ns), cells in rows.items():
        label = f"{verb} {res}{' ' + name if name else ''}{' -n ' + ns if ns else ''}"
        print(" ".join([label.ljust(58)] + [cells[u].ljust(10) for u in users]))
    assert not mismatches, mismatches


async def test_reads_are_enforced_with_kubernetes_message(rbac_apiserver: ApiServer) -> None:
    srv = rbac_apiserver
    assert (await asyncio.to_thread(_https, srv, "alice", "/api/v1/namespaces/a/pods"))[0] == 200
    code, body = await asyncio.to_thread(_https, srv, "alice", "/api/v1/namespaces/b/pods")
    assert code == 403 and body["reason"] == "Forbidden" and body["kind"] == "Status"
    assert body["message"] == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
                               'namespace "b"')
    code, body = await asyncio.to_thread(_https, srv, "alice", "/api/v1/nodes/n1")
    assert code == 403 and body["message"] == ('nodes "n1" is forbidden: User "alice" cannot get resource "nodes" in '
                                               'API group "" at the cluster scope')
    code, body = await asyncio.to_thread(_https, srv, SA, "/api/v1/namespaces/a/configmaps/settings")
    assert code == 404  # allowed, and absent
    code, _ = await asyncio.to_thread(_https, srv, SA, "/api/v1/namespaces/a/configmaps/other")
    assert code == 403
    # gRPC: the same denial, the same words
    async with srv.new_client("bob") as bob:
        await bob.list(codec.kinds.for_plural("secrets").cls, namespace="b")  # type: ignore[union-attr]
    code, _, err = await _pbctl(srv, "alice", "get", "secrets", "-n", "a")
    assert code == 1 and 'secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the ' \
                          'namespace "a"' in err


async def test_whoami_list_and_impersonation(rbac_apiserver: ApiServer, tmp_path: Path) -> None:
    srv = rbac_apiserver
    home = tmp_path / "home"
    code, out, err = await _kubectl(srv, home, SA, "auth", "whoami")
    assert code == 0, err
    assert out.split() == ["ATTRIBUTE", "VALUE", "Username", SA, "UID", SA, "Groups", "[system:serviceaccounts",
                           "system:serviceaccounts:a", "system:authenticated]"]
    code, out, _ = await _pbctl(srv, "alice", "auth", "whoami")
    assert code == 0 and out.split() == ["ATTRIBUTE", "VALUE", "Username", "alice", "UID", "alice", "Groups", "[dev",
                                         "system:authenticated]"]
    code, out, err = await _kubectl(srv, home, "alice", "auth", "can-i", "--list", "-n", "a")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert any(line.split()[0] == "pods" and "[get list watch]" in line for line in lines[1:])
    assert any(line.split()[0] == "deployments.apps" for line in lines[1:])
    code, out, _ = await _pbctl(srv, "alice", "auth", "can-i", "--list", "-n", "a")
    assert code == 0 and any(line.split()[0] == "pods" for line in out.splitlines()[1:])
    # the admin may impersonate anyone; the answer is then alice's
    code, out, _ = await _kubectl(srv, home, ADMIN, "auth", "can-i", "list", "pods", "-n", "b", "--as", "alice")
    assert (code, out.strip()) == (1, "no")
    code, out, _ = await _pbctl(srv, ADMIN, "--as", "alice", "auth", "can-i", "list", "pods", "-n", "a")
    assert (code, out.strip()) == (0, "yes")
    code, out, _ = await _pbctl(srv, ADMIN, "--as", "alice", "--as-group", "system:masters", "auth", "can-i",
                                "delete", "nodes")
    assert (code, out.strip()) == (0, "yes")
    # bob (edit) may impersonate service accounts but not users
    code, out, err = await _kubectl(srv, home, "bob", "get", "pods", "-n", "a", "--as", "alice")
    assert code == 1 and 'users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group ' \
                         '"" at the cluster scope' in err
    code, out, err = await _pbctl(srv, "bob", "--as", SA, "get", "configmaps", "settings", "-n", "a")
    assert code == 1 and 'configmaps "settings" not found' in err, err  # allowed as the account: absent


async def test_escalation_prevented_through_the_api(rbac_apiserver: ApiServer, tmp_path: Path) -> None:
    srv = rbac_apiserver
    role = codec.parse_object({"apiVersion": f"{G}/v1", "kind": "ClusterRoleBinding",
                               "metadata": {"name": "bob-admin"},
                               "subjects": [{"kind": "User", "apiGroup": G, "name": "bob"}],
                               "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "cluster-admin"}})
    async with srv.new_client("bob") as bob:
        with pytest.raises(errors.Forbidden):  # edit has no RBAC rights at all
            await bob.create(role)
    await srv.client.create(codec.parse_object({
        "apiVersion": f"{G}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "bob-rbac"},
        "subjects": [{"kind": "User", "apiGroup": G, "name": "bob"}],
        "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "rbac-manager"}}))
    await srv.client.create(codec.parse_object({
        "apiVersion": f"{G}/v1", "kind": "ClusterRole", "metadata": {"name": "rbac-manager"},
        "rules": [{"apiGroups": [G], "resources": ["clusterrolebindings", "clusterroles"], "verbs": ["create"]}]}))
    await asyncio.sleep(0.3)
    async with srv.new_client("bob") as bob:
        with pytest.raises(errors.Forbidden, match="attempting to grant RBAC permissions not currently held"):
            await bob.create(role)
        # a role with only what bob holds is fine
        await bob.create(codec.parse_object({
            "apiVersion": f"{G}/v1", "kind": "ClusterRole", "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}))
        with pytest.raises(errors.Forbidden, match=r'Resources:\["nodes"\]'):
            await bob.create(codec.parse_object({
                "apiVersion": f"{G}/v1", "kind": "ClusterRole", "metadata": {"name": "node-reader"},
                "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}))
    # kubectl sends RBAC objects as Kubernetes protobuf: the same check, the same words
    code, out, err = await _kubectl(srv, tmp_path / "home", "bob", "create", "clusterrole", "node-reader",
                                    "--verb=get", "--resource=nodes")
    assert code == 1 and 'clusterroles.rbac.authorization.k8s.io "node-reader" is forbidden: user "bob" (groups=[]) ' \
                         "is attempting to grant RBAC permissions not currently held" in err, err
    code, out, err = await _kubectl(srv, tmp_path / "home", "bob", "create", "clusterrole", "pod-lister",
                                    "--verb=list", "--resource=pods")
    assert code == 0 and "clusterrole.rbac.authorization.k8s.io/pod-lister created" in out, err


async def test_aggregation_controller_as_the_controller_manager(rbac_apiserver: ApiServer) -> None:
    """A ClusterRole labelled aggregate-to-view adds its rules to view (and through edit to admin), written by
    the controller manager under its own identity (its bootstrap role's `escalate` on clusterroles)."""
    from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
    from services.controllers.main import Config, ControllerManager

    srv = rbac_apiserver
    cm = ControllerManager(Config(controllers=["clusterrole-aggregation"], leader_elect=False, health_port=0),
                           client=srv.new_client(CM))
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(cm.run(ready, stop))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await srv.client.create(codec.parse_object({
            "apiVersion": f"{G}/v1", "kind": "ClusterRole",
            "metadata": {"name": "widgets-view", "labels": {f"{G}/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list"]}]}))

        def has_widgets(r: rbac.ClusterRole) -> bool:
            return any("widgets" in rule.resources for rule in r.rules)

        for _ in range(100):
            roles = {n: await srv.client.get(rbac.ClusterRole, n) for n in ("view", "edit", "admin")}
            if all(has_widgets(r) for r in roles.values()):
                break
            await asyncio.sleep(0.1)
        assert all(has_widgets(r) for r in roles.values()), roles
        code, out, _ = await _pbctl(srv, "alice", "auth", "can-i", "list", "widgets.example.com", "-n", "a")
        assert (code, out.strip()) == (0, "yes")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_bootstrap_policy_reconciled_at_restart(rbac_apiserver: ApiServer) -> None:
    """A deleted bootstrap role comes back at the next start, a bootstrap role that lost a rule gets it back (the
    cluster's own additions kept), and a role annotated autoupdate=false is left as the cluster changed it."""
    from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

    srv = rbac_apiserver
    c = srv.client
    await c.delete(rbac.ClusterRole, "system:kube-scheduler")
    proxier = await c.get(rbac.ClusterRole, "system:node-proxier")
    lost = proxier.rules.pop(0)
    proxier.rules.add(verbs=["get"], api_groups=["example.com"], resources=["widgets"])
    await c.update(proxier)
    dns = await c.get(rbac.ClusterRole, "system:kube-dns")
    dns.metadata.annotations["rbac.authorization.kubernetes.io/autoupdate"] = "false"
    del dns.rules[:]
    dns.rules.add(verbs=["list"], api_groups=[""], resources=["services"])
    await c.update(dns)
    await srv.restart()
    c = srv.client
    sched = await c.get(rbac.ClusterRole, "system:kube-scheduler")
    assert any("pods/binding" in r.resources for r in sched.rules)
    proxier = await c.get(rbac.ClusterRole, "system:node-proxier")
    assert lost in proxier.rules and any("widgets" in r.resources for r in proxier.rules)
    dns = await c.get(rbac.ClusterRole, "system:kube-dns")
    assert [r.resources for r in dns.rules] == [["services"]]
