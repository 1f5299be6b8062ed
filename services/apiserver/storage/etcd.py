"""Minimal asyncio etcd v3 client: the only code in pybernetes that speaks etcd's gRPC API.

It exposes exactly what the apiserver's storage layer needs (get, paginated range, guarded
create/update/delete transactions, compaction, watch with prev_kv and progress notifications, the
snapshot stream for backups, the members' status)
and translates gRPC failures into the project's own StorageError tree. It never retries writes and
never silently re-establishes a watch: callers must re-list and re-watch so no event is lost. Given several
members it is pinned to one and moves to the next when a call to it times out or finds it unavailable (a
killed, hung or leaderless member); the watches of the old one end, and their callers re-list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import grpc
import grpc.aio

from pybernetes.tls import CertPair
from services.apiserver.storage.etcdpb import kv_pb2, rpc_pb2

log = logging.getLogger(__name__)

_MSG_LIMIT = 64 * 1024 * 1024
_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", _MSG_LIMIT),
    ("grpc.max_send_message_length", _MSG_LIMIT),
    # etcd's server enforces a 5 s minimum ping interval; 10 s detects dead peers without GOAWAYs.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Default reconnect backoff grows to 120 s; keep it short so a restarted etcd is usable quickly.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    # The least time one connection attempt (TCP and TLS handshake) gets, not a backoff: 0.1 s failed handshakes
    # on a busy host; a hung member is still left after each call's own timeout (EtcdClient.timeout).
    ("grpc.min_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 0),
]

_REQUIRE_LEADER = (("hasleader", "true"),)
_EQUAL = rpc_pb2.Compare.EQUAL
_MOD = rpc_pb2.Compare.MOD
_EV_PUT = kv_pb2.Event.PUT


class StorageError(Exception):
    """Any etcd failure not covered by a more specific subclass."""


class StorageUnavailable(StorageError):
    """etcd is unreachable, timed out, or a watch stream broke."""


class Compacted(StorageError):
    """The requested revision has been compacted away; the caller must re-list."""

    def __init__(self, compact_revision: int, message: str = "") -> None:
        super().__init__(message or f"revision compacted (compact revision {compact_revision})")
        self.compact_revision = compact_revision


class RequestTooLarge(StorageError):
    """etcd rejected the request as larger than its --max-request-bytes."""


class KeyExists(StorageError):
    """create() found the key already present."""


class KeyNotFound(StorageError):
    """delete() found no such key."""


class RevisionMismatch(StorageError):
    """A guarded update/delete found a different mod_revision; .current is the live KV or None."""

    def __init__(self, current: KV | None) -> None:
        super().__init__("key missing" if current is None else f"mod_revision is {current.mod_revision}")
        self.current = current


@dataclass(frozen=True, slots=True)
class KV:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KV]
    more: bool
    count: int
    revision: int  # the revision this read reflects (requested one, else etcd's current)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: Literal["PUT", "DELETE"]
    kv: KV
    prev_kv: KV | None


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """Events of one watch response; an empty batch is a progress notification.

    `revision` is etcd's header revision: once this batch is consumed the watcher has seen every
    change up to it, so it is safe to use as a bookmark.
    """

    events: list[WatchEvent]
    revision: int


@dataclass(frozen=True, slots=True)
class EtcdStatus:
    version: str
    db_size: int
    leader: int
    member_id: int
    raft_index: int
    raft_term: int
    revision: int
    errors: list[str]
    db_size_in_use: int = 0


@dataclass(frozen=True, slots=True)
class Member:
    """One member as Cluster.MemberList names it, with its own Maintenance.Status (None, and `error`, when it
    does not answer; a member added but not started yet has no name and no client URLs)."""

    id: int
    name: str
    client_urls: list[str]
    is_learner: bool
    status: EtcdStatus | None
    error: str = ""


def prefix_end(prefix: bytes) -> bytes:
    """Smallest key greater than every key starting with prefix (etcd's range_end for a prefix)."""
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\x00"  # empty or all-0xff prefix: range to the end of the keyspace


def _task_cancelled() -> bool:
    """Whether a CancelledError is this task being cancelled (else: grpc.aio closed the call's channel)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _kv(m: kv_pb2.KeyValue) -> KV:
    return KV(m.key, m.value, m.create_revision, m.mod_revision, m.version)


@dataclass(frozen=True)
class EtcdTLS:
    """How to reach an etcd serving https:// (kube-apiserver's --etcd-cafile, --etcd-certfile, --etcd-keyfile):
    the CA its serving certificate is checked against, and the client certificate presented to it (an etcd run
    with --client-cert-auth refuses any connection without one signed by its CA)."""

    ca: Path
    client: CertPair | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        pair = self.client
        return grpc.ssl_channel_credentials(self.ca.read_bytes(), pair.key.read_bytes() if pair else None,
                                            pair.cert.read_bytes() if pair else None)


def secure(endpoints: list[str]) -> bool:
    """Whether the endpoints are https:// (all of them) or http:// (all of them); a mix is an error."""
    schemes = {ep.split("://", 1)[0] if "://" in ep else "http" for ep in endpoints}
    if len(schemes) > 1:
        raise ValueError(f"etcd endpoints mix http:// and https://: {','.join(endpoints)}")
    return schemes == {"https"}


def _target(endpoints: list[str]) -> list[str]:
    """gRPC targets, one per member the client may be pinned to, in the order it moves through them when a call
    fails as unavailable or times out (EtcdClient._fail). IP literals go into one pick_first target listing every
    address from the pinned member on, so that gRPC itself skips a member that refuses connections; except over
    TLS when the hosts differ (the certificate is checked against one name per channel: _tls_name). Only moving
    on takes the client off a hung member (its socket open, its answers gone): pick_first alone stays on it until
    keepalive gives up and its connect attempts time out, about a minute without writes."""
    hosts = [ep.removeprefix("http://").removeprefix("https://").rstrip("/") for ep in endpoints]
    if not hosts:
        raise ValueError("at least one etcd endpoint is required")
    try:
        for h in hosts:
            ipaddress.IPv4Address(h.rsplit(":", 1)[0])
    except ValueError:
        return hosts
    if len(hosts) == 1 or (secure(endpoints) and len({h.rsplit(":", 1)[0] for h in hosts}) > 1):
        return hosts
    return ["ipv4:" + ",".join(hosts[i:] + hosts[:i]) for i in range(len(hosts))]


def _tls_name(target: str) -> str:
    """The name a channel checks the member's certificate against: its host (one, for a multi-address target)."""
    return target.removeprefix("ipv4:").split(",")[0].rsplit(":", 1)[0]


def _status(r: rpc_pb2.StatusResponse) -> EtcdStatus:
    return EtcdStatus(version=r.version, db_size=r.dbSize, leader=r.leader, member_id=r.header.member_id,
                      raft_index=r.raftIndex, raft_term=r.raftTerm, revision=r.header.revision,
                      errors=list(r.errors), db_size_in_use=r.dbSizeInUse)


def _translate(err: grpc.aio.AioRpcError) -> StorageError:
    code = err.code()
    details = err.details() or ""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return StorageUnavailable(f"etcd {code.name}: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED or "request is too large" in details:
        return RequestTooLarge(details)
    if "compacted" in details:
        return Compacted(0, details)
    return StorageError(f"etcd {code.name}: {details}")


class EtcdClient:
    """One gRPC channel to etcd; every call is bounded by `timeout` seconds. https:// endpoints need `tls`."""

    def __init__(self, endpoints: list[str], *, timeout: float = 5.0, tls: EtcdTLS | None = None) -> None:
        if secure(endpoints) and tls is None:
            raise ValueError(f"https etcd endpoints need etcd's CA (--etcd-cafile): {','.join(endpoints)}")
        self.tls = tls if secure(endpoints) else None
        self._targets = _target(endpoints)
        self._target_idx = 0
        self._generation = 0  # bumped by each move to another member: a failure seen on an older one is stale
        self._streams: set[Any] = set()  # the watch calls open on the current member
        self.timeout = timeout
        self._connect()

    def _connect(self) -> None:
        target = self._targets[self._target_idx]
        log.debug("etcd channel", extra={"target": target})
        self._channel = self._open(target)
        # Multicallables built straight from the channel (what the generated stubs do, minus a layer).
        ch = self._channel
        unary = ch.unary_unary
        self._range = unary(
            "/etcdserverpb.KV/Range",
            request_serializer=rpc_pb2.RangeRequest.SerializeToString,
            response_deserializer=rpc_pb2.RangeResponse.FromString,
        )
        self._txn = unary(
            "/etcdserverpb.KV/Txn",
            request_serializer=rpc_pb2.TxnRequest.SerializeToString,
            response_deserializer=rpc_pb2.TxnResponse.FromString,
        )
        self._delete_range = unary(
            "/etcdserverpb.KV/DeleteRange",
            request_serializer=rpc_pb2.DeleteRangeRequest.SerializeToString,
            response_deserializer=rpc_pb2.DeleteRangeResponse.FromString,
        )
        self._compact = unary(
            "/etcdserverpb.KV/Compact",
            request_serializer=rpc_pb2.CompactionRequest.SerializeToString,
            response_deserializer=rpc_pb2.CompactionResponse.FromString,
        )
        self._status = unary(
            "/etcdserverpb.Maintenance/Status",
            request_serializer=rpc_pb2.StatusRequest.SerializeToString,
            response_deserializer=rpc_pb2.StatusResponse.FromString,
        )
        self._member_list = unary(
            "/etcdserverpb.Cluster/MemberList",
            request_serializer=rpc_pb2.MemberListRequest.SerializeToString,
            response_deserializer=rpc_pb2.MemberListResponse.FromString,
        )
        self._snapshot = ch.unary_stream(
            "/etcdserverpb.Maintenance/Snapshot",
            request_serializer=rpc_pb2.SnapshotRequest.SerializeToString,
            response_deserializer=rpc_pb2.SnapshotResponse.FromString,
        )
        self._watch = ch.stream_stream(
            "/etcdserverpb.Watch/Watch",
            request_serializer=rpc_pb2.WatchRequest.SerializeToString,
            response_deserializer=rpc_pb2.WatchResponse.FromString,
        )

    def _open(self, target: str) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        name = ("grpc.ssl_target_name_override", _tls_name(target))
        return grpc.aio.secure_channel(target, self.tls.credentials(), options=[*_CHANNEL_OPTIONS, name])

    def _fail(self, err: grpc.aio.AioRpcError, generation: int) -> NoReturn:
        """Raise `err` as a StorageError; an unavailable member or a timeout moves later calls to the next
        member, once per member (the other calls that fail on it at the same time do not move again)."""
        exc = _translate(err)
        if isinstance(exc, StorageUnavailable) and len(self._targets) > 1 and generation == self._generation:
            old = self._channel
            self._target_idx = (self._target_idx + 1) % len(self._targets)
            self._generation += 1
            log.warning("etcd member unavailable, moving on endpoint=%s next=%s error=%s",
                        self._targets[self._target_idx - 1], self._targets[self._target_idx], exc)
            self._connect()
            # Unary calls still running on the old member end by their own deadline within the grace. Its watch
            # streams end now: on a hung member they would wait out the grace with nothing on them. Their
            # watchers re-list and watch again through the new member.
            streams, self._streams = self._streams, set()
            for call in streams:
                call.cancel()
            asyncio.get_running_loop().create_task(old.close(grace=self.timeout + 1))
        raise exc from None

    async def close(self) -> None:
        await self._channel.close()

    # ---- reads -------------------------------------------------------------------------------

    async def get(self, key: bytes) -> KV | None:
        gen = self._generation
        try:
            resp = await self._range(rpc_pb2.RangeRequest(key=key), timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            self._fail(e, gen)
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def range(
        self,
        prefix_or_key: bytes,
        *,
        prefix: bool,
        limit: int = 0,
        revision: int = 0,
        keys_from: bytes | None = None,
    ) -> RangeResult:
        """Read one key or a prefix in key order.

        keys_from is the inclusive start key of a continued page (pass last_key + b"\\x00");
        revision pins the read to an older revision (Compacted if it is gone).
        """
        end = prefix_end(prefix_or_key) if prefix else b""
        start = prefix_or_key if keys_from is None else keys_from
        if keys_from is not None and not prefix:
            raise ValueError("keys_from only makes sense with prefix=True")
        req = rpc_pb2.RangeRequest(key=start, range_end=end, limit=limit, revision=revision)
        gen = self._generation
        try:
            resp = await self._range(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            exc = _translate(e)
            if isinstance(exc, Compacted):
                raise Compacted(await self._probe_compact_revision(), str(exc)) from None
            self._fail(e, gen)
        return RangeResult(
            [_kv(m) for m in resp.kvs], resp.more, resp.count, revision or resp.header.revision
        )

    async def current_revision(self) -> int:
        # A miss on a reserved key is the cheapest linearizable read that returns the header.
        gen = self._generation
        try:
            resp = await self._range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True), timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            self._fail(e, gen)
        return int(resp.header.revision)

    async def status(self) -> EtcdStatus:
        gen = self._generation
        try:
            r = await self._status(rpc_pb2.StatusRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            self._fail(e, gen)
        return _status(r)

    async def members(self) -> list[Member]:
        """Every member (Cluster.MemberList) with the Maintenance.Status its first client URL answers, asked
        of all members at once on short-lived channels (a member's Status is about itself, so each must be
        asked); as `etcdctl endpoint status --cluster` does."""
        gen = self._generation
        try:
            resp = await self._member_list(rpc_pb2.MemberListRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            self._fail(e, gen)
        return list(await asyncio.gather(*(self._member(m) for m in resp.members)))

    async def _member(self, m: rpc_pb2.Member) -> Member:
        urls = list(m.clientURLs)
        found = Member(m.ID, m.name, urls, m.isLearner, None)
        if not urls:
            return dataclasses.replace(found, error="not started")
        if secure(urls[:1]) != (self.tls is not None):
            return dataclasses.replace(found, error=f"{urls[0]}: not the scheme of this client's endpoints")
        ch = self._open(_target(urls[:1])[0])
        try:
            call = ch.unary_unary("/etcdserverpb.Maintenance/Status",
                                  request_serializer=rpc_pb2.StatusRequest.SerializeToString,
                                  response_deserializer=rpc_pb2.StatusResponse.FromString)
            r = await call(rpc_pb2.StatusRequest(), timeout=min(self.timeout, 2.0))
            return dataclasses.replace(found, status=_status(r))
        except grpc.aio.AioRpcError as e:
            return dataclasses.replace(found, error=str(_translate(e)))
        finally:
            await ch.close()

    async def snapshot(self) -> AsyncIterator[tuple[bytes, int, int]]:
        """etcd's backend as (blob, remaining_bytes, header revision) chunks; the last blob is the sha256 of the
        bytes before it. No deadline: a large database takes as long as it takes."""
        gen = self._generation
        try:
            async for r in self._snapshot(rpc_pb2.SnapshotRequest()):
                yield r.blob, r.remaining_bytes, r.header.revision
        except grpc.aio.AioRpcError as e:
            self._fail(e, gen)
        except asyncio.CancelledError:
            if _task_cancelled():
                raise
            raise StorageUnavailable("etcd snapshot stream closed: moved to another member") from None

    # ---- guarded writes ----------------------------------------------------------------------

    async def create(self, key: bytes, value: bytes) -> int:
        """Put key only if absent; returns the new revision."""
        req = rpc_pb2.TxnRequest(
            compare=[rpc_pb2.Compare(result=_EQUAL, target=_MOD, key=key, mod_revision=0)],
            success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))],
        )
        gen = self._generation
        try:
            resp = await self._txn(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            self._fail(e, gen)
        if not resp.succeeded:
            raise KeyExists(key.decode(errors="replace"))
        return int(resp.header.revision)

    async def update(self, key: bytes, value: bytes, expected_mod_revision: int) -> int:
        """Put key only if its mod_revision is unchanged; returns the new revision."""
        req = rpc_pb2.TxnRequest(
            compare=[
                rpc_pb2.Compare(result=_EQUAL, target=_MOD, key=key, mod_revision=expected_mod_revision)
            ],
            success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))],
            # Fetch the live value in the same round trip so the caller can report/retry.
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))],
        )
        gen = self._generation
        try:
            resp = await self._txn(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            self._fail(e, gen)
        if not resp.succeeded:
            kvs = resp.responses[0].response_range.kvs
            raise RevisionMismatch(_kv(kvs[0]) if kvs else None)
        return int(resp.header.revision)

    async def delete(self, key: bytes, expected_mod_revision: int | None = None) -> int:
        """Delete key (only at expected_mod_revision if given); returns the deletion revision."""
        if expected_mod_revision is None:
            gen = self._generation
            try:
                dr = await self._delete_range(rpc_pb2.DeleteRangeRequest(key=key), timeout=self.timeout)
            except grpc.aio.AioRpcError as e:
                self._fail(e, gen)
            if dr.deleted == 0:
                raise KeyNotFound(key.decode(errors="replace"))
            return int(dr.header.revision)
        req = rpc_pb2.TxnRequest(
            compare=[
                rpc_pb2.Compare(result=_EQUAL, target=_MOD, key=key, mod_revision=expected_mod_revision)
            ],
            success=[rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=key))],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))],
        )
        gen = self._generation
        try:
            resp = await self._txn(req, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            self._fail(e, gen)
        if not resp.succeeded:
            kvs = resp.responses[0].response_range.kvs
            if not kvs:
                raise KeyNotFound(key.decode(errors="replace"))
            raise RevisionMismatch(_kv(kvs[0]))
        if resp.responses[0].response_delete_range.deleted == 0:
            # Only reachable with expected_mod_revision=0, which matches a missing key.
            raise KeyNotFound(key.decode(errors="replace"))
        return int(resp.header.revision)

    async def compact(self, revision: int, *, physical: bool = False) -> None:
        """Discard history before revision; raises Compacted if it already was."""
        gen = self._generation
        try:
            await self._compact(
                rpc_pb2.CompactionRequest(revision=revision, physical=physical), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as e:
            exc = _translate(e)
            if isinstance(exc, Compacted):
                raise Compacted(await self._probe_compact_revision(), str(exc)) from None
            self._fail(e, gen)

    # ---- watch -------------------------------------------------------------------------------

    async def watch(
        self,
        prefix: bytes,
        start_revision: int,
        *,
        prefix_mode: bool = True,
        progress_notify: bool = True,
    ) -> AsyncIterator[WatchBatch]:
        """Stream changes from start_revision (0 = now) as WatchBatch, with prev_kv.

        Raises Compacted if start_revision is gone and StorageUnavailable when the stream breaks;
        it never reconnects by itself. Closing the iterator cancels the stream.
        """
        create = rpc_pb2.WatchCreateRequest(
            key=prefix,
            range_end=prefix_end(prefix) if prefix_mode else b"",
            start_revision=start_revision,
            progress_notify=progress_notify,
            prev_kv=True,
        )
        # etcd's "require leader" (clientv3.WithRequireLeader, as kube-apiserver's watches): a member cut off
        # from its cluster ends the stream instead of keeping it open with nothing on it.
        call = self._watch(metadata=_REQUIRE_LEADER)
        self._streams.add(call)
        try:
            try:
                await asyncio.wait_for(call.write(rpc_pb2.WatchRequest(create_request=create)), self.timeout)
                first = await asyncio.wait_for(call.read(), self.timeout)
            except TimeoutError:
                raise StorageUnavailable("etcd watch: no response to create request") from None
            self._check_watch_response(first)
            while True:
                resp = await call.read()
                self._check_watch_response(resp)
                yield WatchBatch(
                    [
                        WatchEvent(
                            "PUT" if ev.type == _EV_PUT else "DELETE",
                            _kv(ev.kv),
                            _kv(ev.prev_kv) if ev.HasField("prev_kv") else None,
                        )
                        for ev in resp.events
                    ],
                    resp.header.revision,
                )
        except grpc.aio.AioRpcError as e:
            raise StorageUnavailable(f"etcd watch stream broke: {e.code().name}: {e.details()}") from None
        except asyncio.CancelledError:
            if _task_cancelled():
                raise
            # grpc.aio ends a call cancelled or closed with its channel (the client moved to another member) with
            # a CancelledError: to the watcher that is a broken stream, not a request to stop.
            raise StorageUnavailable("etcd watch stream closed: moved to another member") from None
        finally:
            call.cancel()
            self._streams.discard(call)

    @staticmethod
    def _check_watch_response(resp: Any) -> None:
        if resp is grpc.aio.EOF:
            raise StorageUnavailable("etcd watch stream ended")
        if resp.compact_revision:
            raise Compacted(resp.compact_revision)
        if resp.canceled:
            raise StorageError(f"etcd cancelled watch: {resp.cancel_reason}")

    async def _probe_compact_revision(self) -> int:
        """etcd's compacted error carries no revision; a watch from revision 1 is told it exactly.

        Only called after a compacted error, so revision 1 is known to be gone and etcd answers at
        once. Returns 0 if it cannot find out.
        """
        call = self._watch()
        try:
            create = rpc_pb2.WatchCreateRequest(key=b"\x00", start_revision=1)
            await asyncio.wait_for(call.write(rpc_pb2.WatchRequest(create_request=create)), self.timeout)
            for _ in range(3):
                resp = await asyncio.wait_for(call.read(), self.timeout)
                if resp is grpc.aio.EOF:
                    break
                if resp.compact_revision:
                    return int(resp.compact_revision)
        except (grpc.aio.AioRpcError, TimeoutError):
            pass
        finally:
            call.cancel()
        return 0
