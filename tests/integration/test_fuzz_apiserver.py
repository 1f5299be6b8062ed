"""A fuzzer against a running apiserver: random and mutated requests through the REST front end (HTTPS, the
admin token) and the gRPC API (the raw stub, malformed envelopes and bytes).

Every answer must be a proper refusal or a success: REST a JSON `kind: Status` whose code is the HTTP status
(never 500); gRPC a status code other than INTERNAL/UNKNOWN with the meta.v1.Status in `pb-status-bin`.
Afterwards the apiserver still serves (create, get, list, watch), and refused writes left nothing in storage:
the objects in the fuzzed namespace are exactly the seeded ones plus those whose create was accepted, and a
seeded object that no accepted write touched keeps its resourceVersion.

Seeded and bounded: PB_FUZZ_SEED picks the seed (printed), 150 REST + 150 gRPC requests (x10 with PB_FUZZ_LONG).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
import time
from collections import Counter
from typing import Any

import aiohttp
import grpc
import pytest

from pybernetes import rpc
from pybernetes.api import codec, kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

NS = "fuzz"
_RESOURCES = ("pods", "configmaps", "services", "secrets", "deployments", "jobs", "namespaces", "nodes",
              "replicasets", "leases", "widgets", "")
_COUNT = 150 * (10 if os.environ.get("PB_FUZZ_LONG") else 1)
_JUNK: list[Any] = [None, True, 0, -1, 2**31, 2**64, 1e300, "", "x" * 300, "\ud800", "ünï", [], {}, [None],
                    {"$patch": "delete"}, {"": None}, "1e9999999", "0001-01-01T00:00:00+01:00"]


def _seed_objects() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-0", "labels": {"app": "a"}},
         "data": {"k": "v"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-0"},
         "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
                                  "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc-0"},
         "spec": {"selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dep-0"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}},
                  "template": {"metadata": {"labels": {"app": "a"}},
                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
    ]


def _mutate(rng: random.Random, v: Any, depth: int = 0) -> Any:
    """`v` with one random change somewhere: a junk value, a dropped or unknown key, a renamed object."""
    if isinstance(v, dict) and v and depth < 6 and rng.random() < 0.7:
        k = rng.choice(list(v))
        out = dict(v)
        r = rng.random()
        if r < 0.6:
            out[k] = _mutate(rng, v[k], depth + 1)
        elif r < 0.8:
            del out[k]
        else:
            out[rng.choice(["bogus", "Name", "$patch", "status", "metadata"])] = rng.choice(_JUNK)
        return out
    if isinstance(v, list) and v and depth < 6 and rng.random() < 0.7:
        i = rng.randrange(len(v))
        return [*v[:i], _mutate(rng, v[i], depth + 1), *v[i + 1:]]
    return rng.choice(_JUNK)


def _body(rng: random.Random) -> tuple[bytes, str]:
    """A request body and its content type: mostly mutated manifests, sometimes garbage."""
    r = rng.random()
    if r < 0.6:
        obj = rng.choice(_seed_objects())
        obj["metadata"]["name"] = f"f-{rng.randrange(1000)}"
        for _ in range(rng.randrange(3)):
            obj = _mutate(rng, obj)
        return json.dumps(obj).encode(), "application/json"
    if r < 0.7:
        obj = rng.choice(_seed_objects())
        obj["metadata"]["name"] = f"f-{rng.randrange(1000)}"
        return codec.yaml_dump(obj).encode(), "application/yaml"
    return rng.choice([b"", b"{", b"null", b"[]", b"\xff\xfe", b"[" * 100_000, b'{"a":' * 5000,
                       b"1" * 5000, b"- a\n- b", b'"\\ud800"', b"!!python/object:os.system\n",
                       json.dumps(_mutate(rng, {})).encode()]), rng.choice(["application/json", "application/yaml",
                                                                          "text/plain"])


def _patch_body(rng: random.Random) -> tuple[bytes, str]:
    ctype = rng.choice(["application/merge-patch+json", "application/strategic-merge-patch+json",
                        "application/json-patch+json", "application/apply-patch+yaml", "text/plain"])
    if rng.random() < 0.4:
        ops = [{"op": rng.choice(["add", "remove", "replace", "move", "copy", "test", "x"]),
                "path": rng.choice(["/metadata/labels/x", "/spec/containers/0/image", "/a/²", "/data/k", "",
                                    "/metadata/labels", "/spec/replicas", "bad"]),
                "from": rng.choice(["/metadata", "/spec"]), "value": rng.choice([*_JUNK, "x", 3])}
               for _ in range(rng.randrange(1, 3))]
        return json.dumps(ops).encode(), ctype
    p = _mutate(rng, rng.choice([{"metadata": {"labels": {"x": "y"}}}, {"data": {"k": "w"}},
                                 {"spec": {"replicas": 2, "containers": [{"name": "c", "image": "nginx"}]}},
                                 {"spec": {"ports": [{"port": 81}]}}]))
    return json.dumps(p).encode(), ctype


def _url(rng: random.Random) -> str:
    plural = rng.choice(_RESOURCES)
    info = kinds.for_plural(plural)
    prefix = f"/apis/{info.group}/v1" if info is not None and info.group else "/api/v1"
    if rng.random() < 0.1:
        prefix = rng.choice(["/apis/nope/v1", "/api/v2", "/apis", "/api/v1/namespaces/%ff", "/x/../api/v1"])
    ns = rng.choice([NS, NS, "", "default", "Not_A_Name", "x" * 300])
    if not plural and ns in (NS, "default"):  # ".../namespaces/fuzz/" is the namespace itself: keep it
        ns = "Not_A_Name"
    path = f"{prefix}/namespaces/{ns}/{plural}" if ns else f"{prefix}/{plural}"
    name = rng.choice(["", "", "cm-0", "pod-0", "svc-0", "dep-0", f"f-{rng.randrange(1000)}", "%00", "a/b"])
    if name:
        path += f"/{name}" + rng.choice(["", "", "", "/status", "/scale", "/binding", "/log", "/nope"])
    query = {k: rng.choice(v) for k, v in {
        "labelSelector": ["app=a", "app in (", "!!", "a,b", "x" * 70 + "=y", "app notin (a,b)"],
        "fieldSelector": ["metadata.name=cm-0", "bogus=1", "metadata.name", "=x", "a===b"],
        "limit": ["1", "-1", "x", "99999999999999999999"], "continue": ["x", "eyJydiI6MX0=", ""],
        "resourceVersion": ["0", "x", "-1", "99999999999"], "dryRun": ["All", "x"],
        "resourceVersionMatch": ["NotOlderThan", "Exact", "x"], "propagationPolicy": ["Foreground", "x"],
    }.items() if rng.random() < 0.15}
    if rng.random() < 0.1:
        query.update(watch="true", timeoutSeconds=rng.choice(["1", "0", "-5", "x", "nan", "inf", "1e400"]))
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


# What the fuzzer found, replayed first: (method, url, body, content type) and (gRPC method, payload).
_REST_REGRESSIONS = [
    ("POST", f"/api/v1/namespaces/{NS}/configmaps", b"[" * 100_000, "application/json"),  # RecursionError: 500
    ("PATCH", f"/api/v1/namespaces/{NS}/configmaps/cm-0", b"[" * 100_000, "application/merge-patch+json"),
    ("DELETE", f"/api/v1/namespaces/{NS}/configmaps/nope", b"[" * 100_000, "application/json"),
    ("GET", f"/api/v1/namespaces/{NS}/pods?limit=99999999999999999999", b"", "application/json"),  # ValueError
    ("GET", f"/api/v1/namespaces/{NS}/pods?watch=true&timeoutSeconds=inf", b"", "application/json"),  # never ends
    ("POST", f"/api/v1/namespaces/{NS}/configmaps", b'{"metadata": {"name": "\\ud800"}}', "application/json"),
    # deletecollection across all namespaces deleted every ConfigMap (kube-apiserver: list and watch only): 405
    ("DELETE", "/api/v1/configmaps", b"", "application/json"),
]
_GRPC_REGRESSIONS = [
    ("Get", b"\n"),  # a truncated GetRequest: UNKNOWN "Unexpected DecodeError", no Status
    ("Watch", pb.WatchRequest(resource="bindings", namespace=NS, timeout_seconds=1).SerializeToString()),  # KeyError
    ("List", pb.ListRequest(resource="bindings", namespace=NS).SerializeToString()),
    # Binding bytes that do not parse: DecodeError, INTERNAL
    ("Create", pb.CreateRequest(resource="bindings", namespace=NS, object=pb.Object(raw=b"\n")).SerializeToString()),
    ("Create", pb.CreateRequest(resource="pods", namespace=NS, name="pod-0", subresource="binding",
                                object=pb.Object(raw=b"\n")).SerializeToString()),
]


async def _replay_regressions(s: aiohttp.ClientSession, base: str, chan: grpc.aio.Channel, token: str) -> None:
    for method, url, body, ctype in _REST_REGRESSIONS:
        async with s.request(method, base + url, data=body, headers={"Content-Type": ctype}) as r:
            doc = json.loads(await r.read())
            assert 400 <= r.status < 500 and doc["kind"] == "Status" and doc["code"] == r.status, (url, doc)
    for name, payload in _GRPC_REGRESSIONS:
        path = f"/pybernetes.rpc.v1.API/{name}"
        with pytest.raises(grpc.aio.AioRpcError) as e:
            if name == "Watch":
                async for _ in chan.unary_stream(path)(payload, metadata=rpc.bearer(token), timeout=10):
                    pass
            else:
                await chan.unary_unary(path)(payload, metadata=rpc.bearer(token), timeout=10)
        assert e.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED), e.value
        status = meta.Status.FromString(dict(e.value.trailing_metadata() or ())[rpc.STATUS_KEY])
        assert status.code in (400, 405), status


def _own_url(body: bytes, method: str) -> str | None:
    try:
        doc = json.loads(body)
        info = kinds.for_kind(str(doc["apiVersion"]), str(doc["kind"]))
        name = str(doc["metadata"]["name"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if info is None:
        return None
    prefix = f"/apis/{info.group}/v1" if info.group else "/api/v1"
    path = f"{prefix}/namespaces/{NS}/{info.plural}" if info.namespaced else f"{prefix}/{info.plural}"
    return path + (f"/{name}" if method == "PUT" else "")


async def _rest_request(s: aiohttp.ClientSession, base: str, rng: random.Random,
                        created: set[tuple[str, str]], touched: Counter[str], accepted: dict[str, Any]) -> None:
    method = rng.choice(["GET", "GET", "POST", "POST", "PUT", "PATCH", "PATCH", "DELETE", "OPTIONS"])
    url = _url(rng)
    body, ctype = (_patch_body(rng) if method == "PATCH" else _body(rng) if method in ("POST", "PUT")
                   else _body(rng) if method == "DELETE" and rng.random() < 0.3 else (b"", ""))
    if method in ("POST", "PUT") and rng.random() < 0.6:  # aim at the body's own resource: some are accepted
        url = _own_url(body, method) or url
    headers = {"Content-Type": ctype} if ctype else {}
    async with s.request(method, base + url, data=body, headers=headers,
                         timeout=aiohttp.ClientTimeout(total=20)) as r:
        text = await r.read()
        assert r.status != 500 and r.status < 600, f"{method} {url} {body[:300]!r}: {r.status} {text[:500]!r}"
        if r.status >= 400:
            doc = json.loads(text)
            assert doc.get("kind") == "Status" and doc.get("code") == r.status, (method, url, doc)
        elif method in ("POST", "PUT", "PATCH", "DELETE") and "dryRun" not in url:
            _record(text, r.status, method, created, touched)
            if method == "POST" and r.status == 201:
                accepted[url.split("?")[0] + "/" + json.loads(text)["metadata"]["name"]] = json.loads(text)


def _record(text: bytes, status: int, method: str, created: set[tuple[str, str]], touched: Counter[str]) -> None:
    try:
        doc = json.loads(text)
    except ValueError:
        return
    if not isinstance(doc, dict):
        return
    for item in doc.get("items") or []:  # a collection delete answers with the deleted objects
        touched[item["metadata"]["name"]] += 1
    if isinstance(doc.get("details"), dict) and doc["details"].get("name"):  # a Status answer
        touched[doc["details"]["name"]] += 1
    md = doc.get("metadata")
    name = md.get("name") if isinstance(md, dict) else None
    if not name:
        return
    touched[name] += 1
    if method == "POST" and status == 201:
        created.add((str(doc.get("kind")), name))


async def _grpc_request(chan: grpc.aio.Channel, token: str, rng: random.Random,
                        created: set[tuple[str, str]], touched: Counter[str]) -> None:
    method = rng.choice(["Create", "Get", "List", "Update", "Patch", "Delete", "Discovery", "Watch"])
    body, _ = _body(rng)
    obj = pb.Object(api_version=rng.choice(["v1", "apps/v1", "", "v9"]),
                    kind=rng.choice(["ConfigMap", "Pod", "Service", "Deployment", "", "Widget"]))
    r = rng.random()
    try:
        manifest = codec.parse_object(json.loads(body))
        obj.api_version, obj.kind, obj.raw = codec.to_envelope(manifest).api_version, codec.to_envelope(
            manifest).kind, manifest.SerializeToString()
    except Exception:  # a mutated manifest the codec refuses: send its bytes instead
        obj.raw = body
    if r < 0.3:  # flip bytes of a valid envelope
        raw = bytearray(obj.raw or b"\x0a\x00")
        for _ in range(rng.randrange(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        obj.raw = bytes(raw)
    resource = rng.choice((*_RESOURCES, "bindings"))
    ns, name = rng.choice([NS, NS, "", "Bad_NS"]), rng.choice(["", "cm-0", "pod-0", f"f-{rng.randrange(1000)}"])
    sub = rng.choice(["", "", "", "status", "binding", "scale", "nope"])
    req: Any
    if method == "Create":
        req = pb.CreateRequest(resource=resource, namespace=ns, object=obj, subresource=sub)
    elif method == "Get":
        req = pb.GetRequest(resource=resource, namespace=ns, name=name)
    elif method == "List":
        req = pb.ListRequest(resource=resource, namespace=ns, label_selector=rng.choice(["", "app in (", "a=b"]),
                             field_selector=rng.choice(["", "bogus=1", "metadata.name=cm-0"]),
                             limit=rng.choice([0, 1, -1, 2**31]), resource_version=rng.choice(["", "x", "0"]))
        setattr(req, "continue", rng.choice(["", "x", "eyJydiI6MX0="]))
    elif method == "Update":
        req = pb.UpdateRequest(resource=resource, namespace=ns, object=obj, subresource=sub)
    elif method == "Patch":
        pbody, ptype = _patch_body(rng)
        req = pb.PatchRequest(resource=resource, namespace=ns, name=name, patch=pbody,
                              patch_type=rng.choice([ptype, "merge", "strategic", "json", "x", ""]), subresource=sub)
    elif method == "Delete":
        req = pb.DeleteRequest(resource=resource, namespace=ns, name=name)
    elif method == "Discovery":
        req = pb.DiscoveryRequest()
    else:
        req = pb.WatchRequest(resource=resource, namespace=ns, resource_version=rng.choice(["", "x", "0"]),
                              timeout_seconds=1)
    payload = req.SerializeToString()
    if rng.random() < 0.15:  # a malformed envelope: truncated or random bytes
        payload = payload[: rng.randrange(len(payload) + 1)] if rng.random() < 0.5 else rng.randbytes(40)
    path = f"/pybernetes.rpc.v1.API/{method}"
    md = rpc.bearer(token)
    try:
        if method == "Watch":
            call = chan.unary_stream(path)(payload, metadata=md, timeout=10)
            async for _ in call:
                pass
        else:
            out = await chan.unary_unary(path)(payload, metadata=md, timeout=10)
            if method in ("Create", "Update", "Patch", "Delete") and out:
                _record_envelope(out, method, created, touched)
    except grpc.aio.AioRpcError as e:
        where = f"{method} {req!r:.300} payload={payload[:200]!r}"
        assert e.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), f"{where}: {e}"
        if e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            return
        status = dict(e.trailing_metadata() or ()).get(rpc.STATUS_KEY)
        assert status is not None, f"{where}: {e.code()} {e.details()} without {rpc.STATUS_KEY}"
        st = meta.Status.FromString(status)
        assert st.status == "Failure" and 400 <= st.code < 500 and st.reason, (where, st)


def _record_envelope(out: bytes, method: str, created: set[tuple[str, str]], touched: Counter[str]) -> None:
    env = pb.Object.FromString(out) if method != "Delete" else pb.DeleteResponse.FromString(out).object
    if not env.kind:
        return
    msg = codec.from_envelope(env)
    name = msg.metadata.name  # type: ignore[attr-defined]  # every kind has ObjectMeta
    touched[name] += 1
    if method == "Create":
        created.add((env.kind, name))


async def _snapshot(srv: ApiServer) -> dict[tuple[str, str], str]:
    """(kind, name) -> resourceVersion of every object in the fuzzed namespace."""
    out: dict[tuple[str, str], str] = {}
    for info in kinds.RESOURCES:
        if not info.namespaced or "list" not in info.verbs:
            continue
        for o in (await srv.client.list(info.cls, namespace=NS)).items:
            md = o.metadata  # type: ignore[attr-defined]  # every kind has ObjectMeta
            out[(info.kind, md.name)] = md.resource_version
    return out


async def test_fuzz_rest_and_grpc(https_apiserver: ApiServer) -> None:
    srv = https_apiserver
    seed = int(os.environ.get("PB_FUZZ_SEED") or (19 if os.environ.get("CI") else random.randrange(2**32)))
    print(f"fuzz seed {seed} (PB_FUZZ_SEED={seed} reproduces it)")
    rng = random.Random(seed)
    ns = core.Namespace()
    ns.metadata.name = NS
    await srv.client.create(ns)
    for d in _seed_objects():
        await srv.client.create(codec.parse_object({**d, "metadata": {**d["metadata"], "namespace": NS}}))
    before = await _snapshot(srv)
    created: set[tuple[str, str]] = set()
    touched: Counter[str] = Counter()  # name -> accepted writes
    accepted: dict[str, Any] = {}  # URL -> the object a REST create answered

    ctx = ssl.create_default_context(cafile=str(srv.cfg.data_dir / "pki" / "ca.crt"))
    base = f"https://localhost:{srv.cfg.secure_port}"
    started = time.monotonic()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {srv.token}"},
                                     connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        chan = rpc.channel(srv.address, tls=srv.tls)
        await _replay_regressions(s, base, chan, srv.token)
        for _ in range(_COUNT):
            await _rest_request(s, base, rng, created, touched, accepted)
    try:
        for _ in range(_COUNT):
            await _grpc_request(chan, srv.token, rng, created, touched)
    finally:
        await chan.close()
    print(f"fuzz: {2 * _COUNT} requests in {time.monotonic() - started:.1f}s, {len(created)} creates accepted")
    # An accepted object reads back from storage exactly as the create answered (unless written since).
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {srv.token}"},
                                     connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        for url, obj in accepted.items():
            if touched[obj["metadata"]["name"]] > 1:
                continue  # written again since
            async with s.get(base + url) as r:
                if r.status == 404:
                    continue  # deleted later by the fuzzer
                assert await r.json() == obj, url

    # Still serving: create, get, list, watch.
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "after", NS
    cm.data["k"] = "v"
    made = await srv.client.create(cm)
    assert (await srv.client.get(core.ConfigMap, "after", namespace=NS)).data["k"] == "v"
    assert made.metadata.resource_version
    assert await _first_event(srv) == "ADDED"

    # Refused writes left no trace.
    after = await _snapshot(srv)
    after.pop(("ConfigMap", "after"))
    assert set(after) <= set(before) | created, set(after) - set(before) - created
    for key, rv in before.items():
        if key[1] not in touched:
            assert after.get(key) == rv, f"{key} changed though no write to it was accepted"


async def _first_event(srv: ApiServer) -> str:
    """The type of the first event of a watch from \"0\" (the current objects, as ADDED)."""
    async with asyncio.timeout(15):
        async for ev in srv.client.watch(core.ConfigMap, namespace=NS, resource_version="0", timeout_seconds=5):
            return ev.type
    return ""
