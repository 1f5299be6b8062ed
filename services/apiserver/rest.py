"""Kubernetes API semantics over the store: the verbs, independent of the wire.

create (generateName, uid, defaults, admission, validation), update with optimistic concurrency, status and
binding subresources, patch (merge, strategic, JSON) retried on conflicts, graceful deletion with finalizers and
propagation policy, list (cache or etcd, selectors, pagination) and watch (from the watch cache). The gRPC
servicer in server.py and the REST API in http/ only translate to and from this.

Every write passes the admission chain (services/apiserver/admission) as in kube-apiserver: the mutating
plugins after defaulting, the validating ones after the kind's validation, just before storage. The write
methods take the requesting `user` (None: the apiserver itself) for the plugins that look at it.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import codec, kinds, patch, selectors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import copy, meta_of, set_condition
from pybernetes.api.times import now

from . import fieldmanager
from .admission import CREATE, DELETE, UPDATE, Attributes, Chain, new_chain
from .admission.serviceaccount import MIRROR_POD_ANNOTATION
from .admission.serviceaccount import NAME as SERVICE_ACCOUNT_PLUGIN
from .allocator import ServiceAllocator
from .auth import User
from .registry import defaults, strategy, validation
from .serviceaccount import tokenrequest, volume
from .serviceaccount.tokenrequest import TokenRequests
from .serviceaccount.tokens import store_lookup
from .storage.objects import Cached, with_rv
from .storage.store import Store, Stored, encode_continue
from .storage.watch_cache import Watcher

log = logging.getLogger("pybernetes.apiserver")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
PATCH_RETRIES = 5
M = TypeVar("M", bound=Message)


class NotCurrent(Exception):
    """An update found nothing to write against the watch cache's copy; only etcd's current object can say."""


@dataclass
class ListResult:
    items: list[bytes]
    resource_version: str
    continue_: str = ""
    remaining: int | None = None


class Rest:
    def __init__(self, store: Store, allocator: ServiceAllocator | None = None, *,
                 toleration_seconds: tuple[int, int] = (300, 300), admission: Chain | None = None) -> None:
        self.store = store
        self.allocator = allocator or ServiceAllocator(store)
        # Kubernetes' default plugins unless the caller (main.py's flags) built the chain.
        self.admission = admission or new_chain(store, toleration_seconds=toleration_seconds)
        # Checked after validation on every create and update, with the requesting user: RBAC's escalation
        # prevention (rbac/escalation.py).
        self.write_guard: Callable[[Message, Message | None, User | None], Awaitable[None]] | None = None
        # serviceaccounts/token (serviceaccount.tokenrequest); set by main once the signing key is loaded.
        self.token_requests: TokenRequests | None = None

    @staticmethod
    def _defaults(obj: Message) -> None:
        defaults.apply_defaults(obj)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def resource(plural: str, verb: str = "") -> ResourceInfo:
        """The resource `plural` names; with `verb`, one that supports it (bindings are create-only)."""
        info = kinds.for_plural(plural)
        if info is None:
            raise errors.NotFound(f'the server could not find the requested resource "{plural}"')
        if verb and verb not in info.verbs:
            raise errors.MethodNotAllowed(f"{verb} is not supported on {plural}")
        return info

    @staticmethod
    def _scope(info: ResourceInfo, namespace: str, obj: Message | None = None) -> str:
        if not info.namespaced:
            if obj is not None:
                meta_of(obj).namespace = ""
            return ""
        if obj is not None:
            md = meta_of(obj)
            if md.namespace and namespace and md.namespace != namespace:
                raise errors.BadRequest("the namespace of the provided object does not match the namespace "
                                        "sent on the request")
            namespace = namespace or md.namespace or "default"
            md.namespace = namespace
        if not namespace:
            raise errors.BadRequest(f"{info.plural} are namespaced: a namespace is required")
        return namespace

    @staticmethod
    def _decode(info: ResourceInfo, raw: bytes, api_version: str, kind: str) -> Message:
        if kind and (kind != info.kind or (api_version and api_version != info.api_version)):
            raise errors.BadRequest(f"the object is a {api_version}/{kind}, but the request is for "
                                    f"{info.api_version}/{info.kind} ({info.plural})")
        try:
            return info.cls.FromString(raw)
        except Exception as e:  # protobuf's DecodeError
            raise errors.BadRequest(f"cannot decode {info.kind}: {e}") from None

    @classmethod
    def binding(cls, raw: bytes) -> core.Binding:
        """A Binding from its protobuf bytes; undecodable bytes are a BadRequest."""
        b = cls._decode(kinds.for_class(core.Binding), raw, "", "")
        assert isinstance(b, core.Binding)  # _decode builds info.cls
        return b

    @staticmethod
    def _validate(obj: Message, old: Message | None = None, *, status: bool = False) -> None:
        if status and old is not None:
            errs = validation.validate_status_update(obj, old)
        else:
            errs = validation.validate(obj, old=old)
        if errs:
            md = meta_of(obj)
            info = kinds.for_message(obj)
            detail = ", ".join(str(e) for e in errs)
            raise errors.Invalid(f'{info.kind} "{md.name}" is invalid: {detail}', causes=errs, kind=info.kind,
                                 name=md.name)

    # -- create ----------------------------------------------------------------------------------

    async def create(self, plural: str, namespace: str, raw: bytes, api_version: str = "", kind: str = "",
                     dry_run: bool = False, manager: str | None = None, user: User | None = None) -> Message:
        info = self.resource(plural)
        if "create" not in info.verbs:
            raise errors.MethodNotAllowed(f"create is not supported on {plural}")
        obj = self._decode(info, raw, api_version, kind)
        namespace = self._scope(info, namespace, obj)
        md = meta_of(obj)
        if not md.name:
            if not md.generate_name:
                raise errors.Invalid("metadata.name: Required value: name or generateName is required",
                                     causes=[errors.FieldError("metadata.name", "Required value: name or "
                                                               "generateName is required", "FieldValueRequired")])
            md.name = md.generate_name + "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        md.uid = str(uuid.uuid4())
        md.creation_timestamp.CopyFrom(now())
        md.resource_version = ""
        md.ClearField("deletion_timestamp")
        md.ClearField("deletion_grace_period_seconds")
        md.self_link = ""
        strategy.prepare_for_create(info, obj)
        self._defaults(obj)
        a = Attributes(CREATE, info, namespace, md.name, obj=obj, user=user, dry_run=dry_run)
        await self.admission.admit(a)
        if isinstance(obj, core.Pod):  # after ServiceAccount admission named the pod's account
            await self._token_volume(obj)
        fieldmanager.track(info, None, obj, manager)
        self._validate(obj)
        if self.write_guard is not None:
            await self.write_guard(obj, None, user)
        await self.admission.validate(a)
        if dry_run:
            return obj
        claims = await self.allocator.allocate(obj) if isinstance(obj, core.Service) else None
        try:
            rv = await self.store.create(info, obj)
        except BaseException:
            if claims is not None:
                await self.allocator.release_claims(claims)
            raise
        md.resource_version = str(rv)
        log.debug("created resource=%s object=%s/%s rv=%d", plural, namespace, md.name, rv)
        return obj

    async def bind(self, namespace: str, name: str, raw: bytes, user: User | None = None) -> Message:
        """pods/binding: set spec.nodeName once, with the PodScheduled condition."""
        b = self.binding(raw)
        if not b.target.name:
            raise errors.Invalid("target.name: Required value",
                                 causes=[errors.FieldError("target.name", "Required value", "FieldValueRequired")])
        info = kinds.for_class(core.Pod)
        a = Attributes(CREATE, info, namespace, name, obj=b, subresource="binding", user=user)
        await self.admission.admit(a)
        await self.admission.validate(a)

        async def attempt(cur: Stored) -> Message | None:
            pod = cur.obj
            assert isinstance(pod, core.Pod)  # the store decodes with info.cls
            if b.metadata.uid and b.metadata.uid != pod.metadata.uid:
                raise errors.Conflict(f'pods "{name}": the UID in the binding does not match the pod')
            if pod.metadata.HasField("deletion_timestamp"):
                raise errors.Conflict(f'pod {name} is being deleted, cannot be assigned to a host')
            if pod.spec.node_name:
                raise errors.Conflict(f'pod {name} is already assigned to node "{pod.spec.node_name}"')
            pod.spec.node_name = b.target.name
            set_condition(pod.status.conditions, "PodScheduled", "True", "", "", now())
            try:
                rv = await self.store.update(info, pod, cur.rv)
            except errors.Conflict:
                return None  # written meanwhile (a status, a label): bind what is there now
            pod.metadata.resource_version = str(rv)
            return pod

        for i in range(PATCH_RETRIES):
            out = await self._guaranteed_update(info, namespace, name, attempt, suggest=i == 0)
            if out is not None:
                return out
        raise errors.Conflict(f'pods "{name}": too many concurrent changes while binding')

    async def _token_volume(self, pod: core.Pod) -> None:
        """The ServiceAccount token volume (serviceaccount.volume), as the ServiceAccount admission plugin adds it
        (mirror pods reference no ServiceAccount, and get none). With that plugin off, as in Kubernetes, none:
        the pod names no account the kubelet could ask a token for."""
        if MIRROR_POD_ANNOTATION in pod.metadata.annotations or SERVICE_ACCOUNT_PLUGIN not in self.admission.names:
            return
        sa = await store_lookup(self.store)(kinds.for_class(core.ServiceAccount), meta_of(pod).namespace,
                                            pod.spec.service_account_name or "default")
        assert sa is None or isinstance(sa, core.ServiceAccount)  # the store decodes with the kind's class
        volume.add_token_volume(pod, sa)

    async def create_token(self, namespace: str, name: str, raw: bytes) -> Message:
        """serviceaccounts/token: a TokenRequest (protobuf bytes) answered with its token; nothing is stored."""
        if self.token_requests is None:
            raise errors.NotFound("serviceaccounts/token is not served: the apiserver has no signing key")
        return await self.token_requests.create(self._scope(self.resource("serviceaccounts"), namespace), name,
                                                tokenrequest.decode(raw))

    # -- get/list/watch --------------------------------------------------------------------------

    async def get(self, plural: str, namespace: str, name: str, resource_version: str = "") -> Message:
        """The object from etcd; with a `resource_version` ("0": any, "N": not older than N) from the watch cache,
        as kube's cacher serves such a GET: the kubelet reads its Node so every 10 s, etcd untouched."""
        info = self.resource(plural, "get")
        namespace = self._scope(info, namespace)
        if not resource_version or info.plural not in self.store.caches:
            return (await self.store.get(info, namespace, name)).obj
        try:
            rv = int(resource_version)
        except ValueError:
            raise errors.BadRequest(f"invalid resourceVersion {resource_version!r}") from None
        cache = self.store.cache(info)
        await cache.wait_ready()
        if rv > 0:
            await cache.wait_for_rv(rv)
        cached = self.store.suggested(info, namespace, name)
        if cached is None:
            raise errors.NotFound(f'{info.group_resource} "{name}" not found', kind=info.kind, name=name)
        return cached.obj

    async def list(self, plural: str, namespace: str, label_selector: str, field_selector: str, limit: int,
                   continue_: str, resource_version: str, resource_version_match: str = "") -> ListResult:
        info = self.resource(plural, "list")
        exact = _list_revision(resource_version, resource_version_match, continue_)
        namespace = namespace if info.namespaced else ""
        labels = selectors.parse_label_selector(label_selector)
        fields = selectors.parse_field_selector(field_selector, strategy.selectable_fields(info))
        if resource_version in ("", "0") and not continue_ and not exact:
            cached = await self._list_cached(info, namespace, labels, fields, limit, resource_version == "")
            if cached is not None:
                return cached
        kvs, rev, token, remaining = await self.store.list_from_etcd(info, namespace, limit, continue_, exact)
        out: list[bytes] = []
        fields_of = strategy.fields_fn(info)
        for key, value, rv in kvs:
            if labels.empty() and fields.empty():
                out.append(_with_rv(value, rv))
                continue
            c = Cached.from_value(info, key, value, rv, fields_of)
            if labels.matches(c.labels) and fields.matches(c.fields):
                out.append(c.raw)
        return ListResult(out, str(rev), token, remaining if token else None)

    async def _list_cached(self, info: ResourceInfo, namespace: str, labels: selectors.LabelSelector,
                           fields: selectors.FieldSelector, limit: int, consistent: bool) -> ListResult | None:
        """A list served from the watch cache, as Kubernetes does: "any version" (resourceVersion=0) always, and
        since 1.31 (ConsistentListFromCache) the default consistent read too, once the cache holds this
        apiserver's last write of the kind (see catch_up); a cache that cannot catch up within its wait answers
        None and etcd's quorum read serves. A consistent page ends with a continue token at the cache's revision,
        so the next pages are read from etcd at that same revision; "any version" ignores the limit's token."""
        cache = self.store.cache(info)
        try:
            await cache.wait_ready()
            if consistent:
                await cache.wait_for_rv(self.store.written_rv(info))
        except errors.Unavailable:
            if not consistent:
                raise
            return None
        items = cache.list(namespace, labels, fields)
        token, remaining = "", None
        if limit and len(items) > limit:
            if consistent:
                token, remaining = encode_continue(cache.rv, items[limit - 1].key + b"\x00"), len(items) - limit
            items = items[:limit]
        return ListResult([c.raw for c in items], str(cache.rv), token, remaining)

    async def catch_up(self, plural: str) -> None:
        """Wait until the watch cache of `plural` holds this apiserver's last write of it, so a watch promising a
        consistent initial state (sendInitialEvents with no resourceVersion) does not miss a write its client has
        already seen acknowledged. Kubernetes' consistent reads from the cache wait for etcd's current revision;
        here every write goes through this apiserver, so its last one is that bound."""
        cache = self.store.cache(self.resource(plural, "watch"))
        await cache.wait_ready()
        await cache.wait_for_rv(self.store.written_rv(cache.info))

    def watch(self, plural: str, namespace: str, label_selector: str, field_selector: str,
              resource_version: str, bookmarks: bool) -> tuple[ResourceInfo, Watcher]:
        info = self.resource(plural, "watch")
        namespace = namespace if info.namespaced else ""
        labels = selectors.parse_label_selector(label_selector)
        fields = selectors.parse_field_selector(field_selector, strategy.selectable_fields(info))
        rv: int | None = None
        if resource_version not in ("", "0"):
            try:
                rv = int(resource_version)
            except ValueError:
                raise errors.BadRequest(f"invalid resourceVersion {resource_version!r}") from None
        return info, self.store.cache(info).watch(rv, namespace, labels, fields, bookmarks)

    def unwatch(self, info: ResourceInfo, w: Watcher) -> None:
        self.store.cache(info).unwatch(w)

    # -- update/patch ----------------------------------------------------------------------------

    async def update(self, plural: str, namespace: str, raw: bytes, subresource: str = "",
                     api_version: str = "", kind: str = "", dry_run: bool = False,
                     manager: str | None = None, user: User | None = None) -> Message:
        info = self.resource(plural, "update")
        if subresource and subresource not in info.subresources:
            raise errors.NotFound(f"{plural}/{subresource} does not exist")
        obj = self._decode(info, raw, api_version, kind)
        namespace = self._scope(info, namespace, obj)
        md = meta_of(obj)
        if not md.name:
            raise errors.BadRequest("metadata.name is required for an update")
        want_rv = 0
        if md.resource_version:
            try:
                want_rv = int(md.resource_version)
            except ValueError:
                raise errors.BadRequest(f"invalid resourceVersion {md.resource_version!r}") from None

        async def attempt(cur: Stored) -> Message:
            if want_rv and want_rv != cur.rv:
                raise errors.Conflict(f'Operation cannot be fulfilled on {info.group_resource} "{md.name}": the '
                                      "object has been modified; please apply your changes to the latest version "
                                      "and try again", kind=info.kind, name=md.name)
            # A try on the cache's copy writes a copy of the request: the try on etcd's starts from it unchanged.
            return await self._write_update(info, obj if cur.current else copy(obj), cur, subresource, dry_run,
                                            manager, user)

        out = await self._guaranteed_update(info, namespace, md.name, attempt, suggest=not dry_run)
        assert out is not None  # attempt never answers None
        return out

    async def _guaranteed_update(self, info: ResourceInfo, namespace: str, name: str,
                                 attempt: Callable[[Stored], Awaitable[M | None]], suggest: bool = True) -> M | None:
        """`attempt` on the watch cache's copy of the object, then, if that did not write, on etcd's: kube's
        GuaranteedUpdate as its cacher drives it, so an update costs one etcd round trip, not a read and a write.

        The cache may be behind etcd. Its copy's mod_revision guards the write, so a stale copy fails it rather than
        overwrite, and any error or None (a conflict to retry) from the try on it is decided again on etcd's
        current object, as kube retries tryUpdate with live data. A change that would leave the cache's copy as
        it is proves nothing either (_write_update raises NotCurrent): etcd may hold something else."""
        cached = self.store.suggested(info, namespace, name) if suggest else None
        if cached is not None:
            try:
                out = await attempt(cached)
            except (errors.ApiError, NotCurrent):
                out = None
            if out is not None:
                return out
        return await attempt(await self.store.get(info, namespace, name))

    async def _write_update(self, info: ResourceInfo, obj: Message, cur: Stored, subresource: str,
                            dry_run: bool, manager: str | None = None, user: User | None = None) -> Message:
        """Write `obj` over the stored `cur` (the one update path: update, patch, apply); `manager` records
        an Update operation in managedFields (None: the entries `obj` carries, else the stored ones)."""
        old = cur.obj
        md, omd = meta_of(obj), meta_of(old)
        if md.uid and md.uid != omd.uid:
            raise errors.Conflict(f'Precondition failed: UID in object meta: {md.uid}, does not match the stored '
                                  f"object's UID: {omd.uid}")
        a = Attributes(UPDATE, info, omd.namespace, omd.name, obj=obj, old=old, subresource=subresource, user=user,
                       dry_run=dry_run)
        if subresource == "status":
            obj = a.obj = strategy.prepare_for_status_update(obj, old)
            md = meta_of(obj)
            await self.admission.admit(a)
            self._validate(obj, old, status=True)
            await self.admission.validate(a)
        else:
            # Fields the server owns stay as stored.
            md.uid = omd.uid
            md.creation_timestamp.CopyFrom(omd.creation_timestamp)
            if omd.HasField("deletion_timestamp"):
                md.deletion_timestamp.CopyFrom(omd.deletion_timestamp)
            else:
                md.ClearField("deletion_timestamp")
            if omd.HasField("deletion_grace_period_seconds"):
                md.deletion_grace_period_seconds = omd.deletion_grace_period_seconds
            else:
                md.ClearField("deletion_grace_period_seconds")
            strategy.prepare_for_update(info, obj, old)
            self._defaults(obj)
            await self.admission.admit(a)
        fieldmanager.track(info, old, obj, manager, subresource)
        claims = None
        if isinstance(obj, core.Service) and isinstance(old, core.Service) and subresource != "status" and not dry_run:
            claims = await self.allocator.allocate(obj, old)
        try:
            if subresource != "status":
                self._validate(obj, old)
                if self.write_guard is not None:
                    await self.write_guard(obj, old, user)
                await self.admission.validate(a)
            md.resource_version = omd.resource_version
            if not cur.stale and obj.SerializeToString(deterministic=True) == old.SerializeToString(deterministic=True):
                if not cur.current:
                    raise NotCurrent  # no-op against the cache's copy: etcd's may differ (_guaranteed_update)
                return old  # no-op: no write, no event, same resourceVersion (unless stored under an old key)
            if md.HasField("deletion_timestamp") and not md.finalizers and _ready_to_go(obj):
                # The last finalizer is gone: the object goes now.
                if not dry_run:
                    await self.store.delete(info, md.namespace, md.name, cur.rv)
                    await self._released(old, None)
                return obj
            if dry_run:
                return obj
            rv = await self.store.update(info, obj, cur.rv)
        except BaseException:
            if claims is not None:
                await self.allocator.release_claims(claims)
            raise
        md.resource_version = str(rv)
        await self._released(old, obj)
        return obj

    async def _released(self, old: Message, new: Message | None) -> None:
        """Free the ClusterIP/NodePorts a Service no longer holds."""
        if isinstance(old, core.Service) and (new is None or isinstance(new, core.Service)):
            await self.allocator.release(self.allocator.released_by(old, new))

    async def patch(self, plural: str, namespace: str, name: str, patch_type: str, body: bytes,
                    subresource: str = "", dry_run: bool = False, manager: str | None = None,
                    unknown_fields: Callable[[Sequence[str]], None] | None = None,
                    user: User | None = None) -> Message:
        """Patch and write; `unknown_fields` (HTTP fieldValidation) gets the unknown fields of the patched
        object before anything is written and may refuse them; without it they are Invalid."""
        info = self.resource(plural, "patch")
        if subresource and subresource not in info.subresources:
            raise errors.NotFound(f"{plural}/{subresource} does not exist")
        namespace = self._scope(info, namespace)
        try:
            doc = json.loads(body or b"{}")
        except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than the parser's stack
            raise errors.BadRequest(f"the patch is not valid JSON: {e}") from None

        async def attempt(cur: Stored) -> Message | None:
            current = codec.to_dict(cur.obj)
            patched = self._apply_patch(info, current, patch_type, doc)
            if not isinstance(patched, dict):
                raise errors.BadRequest("the patch did not produce an object")
            patched.pop("apiVersion", None)
            patched.pop("kind", None)
            pmd = patched.setdefault("metadata", {}) if isinstance(patched.get("metadata"), dict | None) else {}
            if isinstance(patched.get("metadata"), dict):
                # A patch may carry a resourceVersion precondition; otherwise it applies to what we read.
                want = pmd.get("resourceVersion")
                if want and str(want) != str(cur.rv):
                    raise errors.Conflict(f'Operation cannot be fulfilled on {info.group_resource} "{name}": the '
                                          "object has been modified; please apply your changes to the latest "
                                          "version and try again", kind=info.kind, name=name)
                pmd["resourceVersion"] = str(cur.rv)
                pmd["name"], pmd["namespace"] = name, namespace or None
            unknown: list[str] | None = [] if unknown_fields is not None else None
            obj = codec.from_dict(patched, info.cls, unknown=unknown)
            if unknown_fields is not None and unknown:
                unknown_fields(unknown)
            try:
                return await self._write_update(info, obj, cur, subresource, dry_run, manager, user)
            except errors.Conflict as e:
                if "UID" in e.message:
                    raise
                return None  # written meanwhile: patch what is there now

        for i in range(PATCH_RETRIES):
            out = await self._guaranteed_update(info, namespace, name, attempt, suggest=i == 0 and not dry_run)
            if out is not None:
                return out
        raise errors.Conflict(f'{info.group_resource} "{name}": too many concurrent changes while patching')

    @staticmethod
    def _apply_patch(info: ResourceInfo, current: dict[str, Any], patch_type: str, doc: Any) -> Any:
        if patch_type in ("application/merge-patch+json", "merge"):
            if not isinstance(doc, dict):
                raise errors.BadRequest("a merge patch must be a JSON object")
            return patch.merge_patch(current, doc)
        if patch_type in ("application/strategic-merge-patch+json", "strategic", ""):
            if not isinstance(doc, dict):
                raise errors.BadRequest("a strategic merge patch must be a JSON object")
            return patch.strategic_merge_patch(current, doc, info.descriptor)
        if patch_type in ("application/json-patch+json", "json"):
            if not isinstance(doc, list):
                raise errors.BadRequest("a JSON patch must be a JSON array of operations")
            return patch.json_patch(current, doc)
        raise errors.BadRequest(f"unsupported patch type {patch_type!r}")

    # -- delete ----------------------------------------------------------------------------------

    async def delete(self, plural: str, namespace: str, name: str, opts: meta.DeleteOptions,
                     user: User | None = None, subresource: str = "") -> tuple[Message, bool]:
        """Delete (gracefully, with finalizers); `subresource` "eviction" when an Eviction asked for it."""
        info = self.resource(plural, "delete")
        namespace = self._scope(info, namespace)
        dry_run = bool(opts.dry_run)
        for _ in range(PATCH_RETRIES):
            cur = await self.store.get(info, namespace, name)
            obj = cur.obj
            md = meta_of(obj)
            pre = opts.preconditions
            if pre.HasField("uid") and pre.uid != md.uid:
                raise errors.Conflict(f'Precondition failed: UID in precondition: {pre.uid}, UID in object meta: '
                                      f"{md.uid}")
            if pre.HasField("resource_version") and pre.resource_version != str(cur.rv):
                raise errors.Conflict(f"Precondition failed: ResourceVersion in precondition: "
                                      f"{pre.resource_version}, ResourceVersion in object meta: {cur.rv}")
            a = Attributes(CREATE if subresource else DELETE, info, namespace, name, old=cur.obj,
                           subresource=subresource, user=user, dry_run=dry_run)
            await self.admission.admit(a)
            await self.admission.validate(a)
            changed = self._prepare_delete(info, obj, opts)
            # A terminating object stays until its finalizers and (pods) its kubelet let it go, also when a
            # repeated delete changes nothing.
            if md.finalizers or (md.HasField("deletion_timestamp") and not _ready_to_go(obj)):
                if not changed or dry_run:
                    return obj, False
                try:
                    rv = await self.store.update(info, obj, cur.rv)
                except errors.Conflict:
                    continue
                md.resource_version = str(rv)
                return obj, False
            if dry_run:
                return obj, True
            try:
                rv = await self.store.delete(info, namespace, name, cur.rv)
            except errors.Conflict:
                continue
            md.resource_version = str(rv)
            await self._released(cur.obj, None)
            return obj, True
        raise errors.Conflict(f'{info.group_resource} "{name}": too many concurrent changes while deleting')

    @staticmethod
    def _prepare_delete(info: ResourceInfo, obj: Message, opts: meta.DeleteOptions) -> bool:
        """Set deletionTimestamp/grace and propagation finalizers; True if the object changed."""
        md = meta_of(obj)
        before = obj.SerializeToString(deterministic=True)
        policy = opts.propagation_policy if opts.HasField("propagation_policy") else ""
        if opts.HasField("orphan_dependents") and not policy:
            policy = "Orphan" if opts.orphan_dependents else "Background"
        if policy == "Orphan" and ORPHAN not in md.finalizers and not md.HasField("deletion_timestamp"):
            md.finalizers.append(ORPHAN)
        elif policy == "Foreground" and FOREGROUND not in md.finalizers and not md.HasField("deletion_timestamp"):
            md.finalizers.append(FOREGROUND)
        grace = 0
        if isinstance(obj, core.Pod):
            grace = (opts.grace_period_seconds if opts.HasField("grace_period_seconds")
                     else (obj.spec.termination_grace_period_seconds
                           if obj.spec.HasField("termination_grace_period_seconds") else 30))
            # Unscheduled or finished pods have nothing to stop: they go at once.
            if not obj.spec.node_name or obj.status.phase in ("Succeeded", "Failed"):
                grace = 0
            if grace > 0:
                if not md.HasField("deletion_timestamp") or grace < md.deletion_grace_period_seconds:
                    t = now()
                    md.deletion_timestamp.seconds = t.seconds + grace
                    md.deletion_grace_period_seconds = grace
        elif isinstance(obj, core.Namespace):
            if not md.HasField("deletion_timestamp"):
                md.deletion_timestamp.CopyFrom(now())
                md.deletion_grace_period_seconds = 0
            obj.status.phase = "Terminating"
        if md.finalizers and not md.HasField("deletion_timestamp"):
            md.deletion_timestamp.CopyFrom(now())
            md.deletion_grace_period_seconds = 0
        if isinstance(obj, core.Pod) and grace == 0 and md.HasField("deletion_timestamp") and not md.finalizers:
            md.deletion_grace_period_seconds = 0
        return obj.SerializeToString(deterministic=True) != before


def _ready_to_go(obj: Message) -> bool:
    """True when nothing but finalizers holds a deleted object (graceful pods wait for their kubelet)."""
    md = meta_of(obj)
    if isinstance(obj, core.Namespace):
        return not obj.spec.finalizers
    if isinstance(obj, core.Pod):
        return bool(md.deletion_grace_period_seconds == 0)
    return True


def _list_revision(resource_version: str, match: str, continue_: str) -> int:
    """The etcd revision a list must read at (resourceVersionMatch=Exact), else 0; Kubernetes' ListOptions
    validation. NotOlderThan needs nothing more: the cache (rv 0) or a quorum read is never older."""
    if not match:
        return 0
    errs: list[errors.FieldError] = []
    if not resource_version:
        errs.append(errors.FieldError("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden unless "
                                      "resourceVersion is provided", "FieldValueForbidden"))
    if continue_:
        errs.append(errors.FieldError("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden when "
                                      "continue is provided", "FieldValueForbidden"))
    if match not in ("Exact", "NotOlderThan"):
        errs.append(errors.FieldError("resourceVersionMatch", f'Unsupported value: "{match}": supported values: '
                                      '"Exact", "NotOlderThan", ""', "FieldValueNotSupported"))
    if match == "Exact" and resource_version == "0":
        errs.append(errors.FieldError("resourceVersionMatch", 'Forbidden: resourceVersionMatch "exact" is forbidden '
                                      'for resourceVersion "0"', "FieldValueForbidden"))
    if errs:
        raise errors.Invalid('ListOptions.meta.k8s.io "" is invalid: ' + ", ".join(str(e) for e in errs),
                             causes=errs, kind="ListOptions")
    if match != "Exact":
        return 0
    try:
        return int(resource_version)
    except ValueError:
        raise errors.BadRequest(f"invalid resourceVersion {resource_version!r}") from None


def _with_rv(value: bytes, rv: int) -> bytes:
    return with_rv(value, rv)

