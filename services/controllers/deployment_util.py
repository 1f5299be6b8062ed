"""Rollout arithmetic and helpers of the Deployment controller (Kubernetes deployment/util).

Pure functions over apps.Deployment / apps.ReplicaSet messages: template hashing, maxSurge and
maxUnavailable resolution, how far the new and old ReplicaSets may move, proportional scaling,
revisions and annotations, and the Deployment conditions. Unit-tested in tests/unit/test_controllers_*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pybernetes.api import objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.times import micro_now

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_NOT_COPIED = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
               "deprecated.deployment.rollback.to"}

# Condition types and reasons.
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
MIN_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MIN_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "ReplicaSetCreateError"

RECREATE = "Recreate"
ROLLING_UPDATE = "RollingUpdate"
MAX_INT32 = 2**31 - 1

_SAFE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


# -- hashing --------------------------------------------------------------------------------------


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """apimachinery rand.SafeEncodeString: map each character onto consonants and digits (no vowels)."""
    return "".join(_SAFE_CHARS[ord(c) % len(_SAFE_CHARS)] for c in s)


def compute_hash(template: core.PodTemplateSpec, collision_count: int | None = None) -> str:
    """A stable short hash of the template (deterministic protobuf bytes, fnv32a, safe-encoded)."""
    t = core.PodTemplateSpec()
    t.CopyFrom(template)
    t.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    data = t.SerializeToString(deterministic=True)
    if collision_count is not None:
        data += collision_count.to_bytes(4, "little", signed=False)
    return safe_encode(str(fnv32a(data)))


def equal_ignore_hash(a: core.PodTemplateSpec, b: core.PodTemplateSpec) -> bool:
    x, y = core.PodTemplateSpec(), core.PodTemplateSpec()
    x.CopyFrom(a)
    y.CopyFrom(b)
    x.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    y.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    return x.SerializeToString(deterministic=True) == y.SerializeToString(deterministic=True)


# -- int-or-percent ---------------------------------------------------------------------------------


def scaled_value(v: meta.IntOrString, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if v.type == 0:
        return int(v.int_val)
    s = v.str_val.strip()
    if not s.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {s!r}")
    try:
        pct = int(s[:-1])
    except ValueError:
        raise ValueError(f"invalid value for IntOrString: {s!r}") from None
    value = pct * total / 100
    return math.ceil(value) if round_up else math.floor(value)


def _intstr(v: meta.IntOrString | None, has: bool) -> meta.IntOrString:
    if v is None or not has:
        return meta.IntOrString(type=1, str_val="25%")
    return v


def resolve_fenceposts(max_surge: meta.IntOrString, max_unavailable: meta.IntOrString,
                       desired: int) -> tuple[int, int]:
    """(surge rounded up, unavailable rounded down); both 0 would deadlock, so unavailable becomes 1."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


replicas = objects.replicas  # du.replicas(d): the Deployment's spec.replicas (unset means 1)


def rs_replicas(rs: apps.ReplicaSet | None) -> int:
    if rs is None:
        return 0
    return objects.replicas(rs)


def is_rolling(d: apps.Deployment) -> bool:
    return d.spec.strategy.type in ("", ROLLING_UPDATE)


def _fenceposts(d: apps.Deployment) -> tuple[int, int]:
    ru = d.spec.strategy.rolling_update
    return resolve_fenceposts(_intstr(ru.max_surge, ru.HasField("max_surge")),
                              _intstr(ru.max_unavailable, ru.HasField("max_unavailable")), replicas(d))


def max_surge(d: apps.Deployment) -> int:
    if not is_rolling(d):
        return 0
    return _fenceposts(d)[0]


def max_unavailable(d: apps.Deployment) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(_fenceposts(d)[1], replicas(d))


# -- replica counting -------------------------------------------------------------------------------


def replica_count(rss: Iterable[apps.ReplicaSet | None]) -> int:
    """Sum of spec.replicas."""
    return sum(rs_replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: Iterable[apps.ReplicaSet | None]) -> int:
    return sum(rs.status.replicas for rs in rss if rs is not None)


def ready_replica_count(rss: Iterable[apps.ReplicaSet | None]) -> int:
    return sum(rs.status.ready_replicas for rs in rss if rs is not None)


def available_replica_count(rss: Iterable[apps.ReplicaSet | None]) -> int:
    return sum(rs.status.available_replicas for rs in rss if rs is not None)


def filter_active(rss: Iterable[apps.ReplicaSet | None]) -> list[apps.ReplicaSet]:
    return [rs for rs in rss if rs is not None and rs_replicas(rs) > 0]


def new_rs_new_replicas(d: apps.Deployment, all_rss: Sequence[apps.ReplicaSet | None],
                        new_rs: apps.ReplicaSet | None) -> int:
    """How many replicas the new ReplicaSet may have now (NewRSNewReplicas)."""
    if not is_rolling(d):
        return replicas(d)
    current = replica_count(all_rss)
    max_total = replicas(d) + max_surge(d)
    new_count = rs_replicas(new_rs)
    if current >= max_total:
        return new_count
    scale_up = min(max_total - current, replicas(d) - new_count)
    return new_count + scale_up


def max_scaled_down(d: apps.Deployment, all_rss: Sequence[apps.ReplicaSet | None],
                    new_rs: apps.ReplicaSet | None) -> int:
    """reconcileOldReplicaSets' bound: how many old replicas may go now (<= 0: none)."""
    all_pods = replica_count(all_rss)
    min_available = replicas(d) - max_unavailable(d)
    new_unavailable = rs_replicas(new_rs) - (new_rs.status.available_replicas if new_rs is not None else 0)
    return all_pods - min_available - new_unavailable


def round_half_away(x: float) -> int:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def annotation_int(rs: apps.ReplicaSet, name: str) -> int | None:
    v = rs.metadata.annotations.get(name)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return None


def rs_fraction(rs: apps.ReplicaSet, d: apps.Deployment) -> int:
    if replicas(d) == 0:
        return -rs_replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    annotated = annotation_int(rs, MAX_REPLICAS)
    if annotated is None or annotated == 0:
        annotated = d.status.replicas
    if annotated == 0:
        return 0
    new_size = rs_replicas(rs) * deployment_replicas / annotated
    return round_half_away(new_size) - rs_replicas(rs)


def proportion(rs: apps.ReplicaSet, d: apps.Deployment, to_add: int, added: int) -> int:
    if rs_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _created(rs: apps.ReplicaSet) -> tuple[float, str]:
    t = rs.metadata.creation_timestamp
    return (t.seconds + t.nanos / 1e9, rs.metadata.name)


def by_creation(rss: Iterable[apps.ReplicaSet]) -> list[apps.ReplicaSet]:
    return sorted(rss, key=_created)


def by_size_newer(rss: Iterable[apps.ReplicaSet]) -> list[apps.ReplicaSet]:
    """Larger first; among equals, newer first (ReplicaSetsBySizeNewer)."""
    return sorted(rss, key=lambda rs: (-rs_replicas(rs), -_created(rs)[0], rs.metadata.name))


def by_size_older(rss: Iterable[apps.ReplicaSet]) -> list[apps.ReplicaSet]:
    """Larger first; among equals, older first (ReplicaSetsBySizeOlder)."""
    return sorted(rss, key=lambda rs: (-rs_replicas(rs), _created(rs)))


def proportional_sizes(d: apps.Deployment, active: Sequence[apps.ReplicaSet]) -> tuple[list[apps.ReplicaSet],
                                                                                        dict[str, int], str]:
    """Spread a Deployment resize over its active ReplicaSets (the rolling branch of scale()).

    Returns (RSs in the order to update them, name -> new size, "up"/"down"/"")."""
    total = replica_count(active)
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - total
    op = ""
    ordered = list(active)
    if to_add > 0:
        ordered, op = by_size_newer(active), "up"
    elif to_add < 0:
        ordered, op = by_size_older(active), "down"
    sizes: dict[str, int] = {}
    added = 0
    for rs in ordered:
        if to_add != 0:
            p = proportion(rs, d, to_add, added)
            sizes[rs.metadata.name] = rs_replicas(rs) + p
            added += p
        else:
            sizes[rs.metadata.name] = rs_replicas(rs)
    if ordered and to_add != 0:
        first = ordered[0].metadata.name
        sizes[first] = max(0, sizes[first] + to_add - added)
    return ordered, sizes, op


def find_new_rs(d: apps.Deployment, rss: Iterable[apps.ReplicaSet]) -> apps.ReplicaSet | None:
    """The oldest ReplicaSet whose template equals the Deployment's (ignoring the hash label)."""
    for rs in by_creation(rss):
        if equal_ignore_hash(rs.spec.template, d.spec.template):
            return rs
    return None


def find_old_rss(new_rs: apps.ReplicaSet | None, rss: Iterable[apps.ReplicaSet]) -> list[apps.ReplicaSet]:
    return [rs for rs in rss if new_rs is None or rs.metadata.uid != new_rs.metadata.uid]


def find_active_or_latest(new_rs: apps.ReplicaSet | None,
                          old_rss: Sequence[apps.ReplicaSet]) -> apps.ReplicaSet | None:
    if new_rs is None and not old_rss:
        return None
    olds = by_size_newer(old_rss)
    active = filter_active([*olds, new_rs])
    if not active:
        return new_rs if new_rs is not None else olds[0]
    if len(active) == 1:
        return active[0]
    return None


def is_saturated(d: apps.Deployment, rs: apps.ReplicaSet | None) -> bool:
    if rs is None:
        return False
    desired = annotation_int(rs, DESIRED_REPLICAS)
    return (rs_replicas(rs) == replicas(d) and desired == replicas(d)
            and rs.status.available_replicas == replicas(d))


# -- revisions and annotations ----------------------------------------------------------------------


def revision(obj: apps.ReplicaSet | apps.Deployment) -> int:
    try:
        return int(obj.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(rss: Iterable[apps.ReplicaSet]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def copy_annotations_to_rs(d: apps.Deployment, rs: apps.ReplicaSet) -> bool:
    changed = False
    for k, v in d.metadata.annotations.items():
        if k in _NOT_COPIED:
            continue
        if rs.metadata.annotations.get(k) != v:
            rs.metadata.annotations[k] = v
            changed = True
    return changed


def set_new_rs_annotations(d: apps.Deployment, rs: apps.ReplicaSet, new_revision: int, exists: bool) -> bool:
    changed = copy_annotations_to_rs(d, rs)
    old = rs.metadata.annotations.get(REVISION, "")
    try:
        old_int = int(old) if old else 0
    except ValueError:
        old_int = 0
    if old_int < new_revision:
        rs.metadata.annotations[REVISION] = str(new_revision)
        changed = True
        if old:
            history = [h for h in rs.metadata.annotations.get(REVISION_HISTORY, "").split(",") if h]
            history.append(old)
            rs.metadata.annotations[REVISION_HISTORY] = ",".join(history)
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def replicas_annotations_need_update(rs: apps.ReplicaSet, desired: int, max_replicas: int) -> bool:
    ann = rs.metadata.annotations
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def set_replicas_annotations(rs: apps.ReplicaSet, desired: int, max_replicas: int) -> bool:
    if not replicas_annotations_need_update(rs, desired, max_replicas):
        return False
    rs.metadata.annotations[DESIRED_REPLICAS] = str(desired)
    rs.metadata.annotations[MAX_REPLICAS] = str(max_replicas)
    return True


# -- conditions and status --------------------------------------------------------------------------


def get_condition(status: apps.DeploymentStatus, typ: str) -> apps.DeploymentCondition | None:
    return objects.condition(status.conditions, typ)


def new_condition(typ: str, status: str, reason: str, message: str) -> apps.DeploymentCondition:
    t = micro_now()
    c = apps.DeploymentCondition(type=typ, status=status, reason=reason, message=message)
    c.last_update_time.CopyFrom(t)
    c.last_transition_time.CopyFrom(t)
    return c


def set_condition(status: apps.DeploymentStatus, cond: apps.DeploymentCondition) -> None:
    """SetDeploymentCondition: no change when status and reason are the same."""
    cur = get_condition(status, cond.type)
    if cur is not None and cur.status == cond.status and cur.reason == cond.reason:
        return
    new = apps.DeploymentCondition()
    new.CopyFrom(cond)
    if cur is not None and cur.status == cond.status:
        new.last_transition_time.CopyFrom(cur.last_transition_time)
    remove_condition(status, cond.type)
    status.conditions.append(new)


def remove_condition(status: apps.DeploymentStatus, typ: str) -> None:
    keep = [c for c in status.conditions if c.type != typ]
    if len(keep) != len(status.conditions):
        copies = []
        for c in keep:
            n = apps.DeploymentCondition()
            n.CopyFrom(c)
            copies.append(n)
        del status.conditions[:]
        status.conditions.extend(copies)


def has_progress_deadline(d: apps.Deployment) -> bool:
    return d.spec.HasField("progress_deadline_seconds") and d.spec.progress_deadline_seconds != MAX_INT32


def has_revision_history_limit(d: apps.Deployment) -> bool:
    return d.spec.HasField("revision_history_limit") and d.spec.revision_history_limit != MAX_INT32


def deployment_complete(d: apps.Deployment, status: apps.DeploymentStatus) -> bool:
    n = replicas(d)
    return (status.updated_replicas == n and status.replicas == n and status.available_replicas == n
            and status.observed_generation >= d.metadata.generation)


def deployment_progressing(d: apps.Deployment, new: apps.DeploymentStatus) -> bool:
    old = d.status
    old_old = old.replicas - old.updated_replicas
    new_old = new.replicas - new.updated_replicas
    return (new.updated_replicas > old.updated_replicas or new_old < old_old
            or new.ready_replicas > old.ready_replicas or new.available_replicas > old.available_replicas)


def deployment_timed_out(d: apps.Deployment, status: apps.DeploymentStatus, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    c = get_condition(status, PROGRESSING)
    if c is None or c.reason == NEW_RS_AVAILABLE:
        return False
    if c.reason == TIMED_OUT:
        return True
    return c.last_update_time.seconds + d.spec.progress_deadline_seconds < now


def calculate_status(all_rss: Sequence[apps.ReplicaSet | None], new_rs: apps.ReplicaSet | None,
                     d: apps.Deployment) -> apps.DeploymentStatus:
    available = available_replica_count(all_rss)
    total = replica_count(all_rss)
    st = apps.DeploymentStatus(
        observed_generation=d.metadata.generation,
        replicas=actual_replica_count(all_rss),
        updated_replicas=actual_replica_count([new_rs]),
        ready_replicas=ready_replica_count(all_rss),
        available_replicas=available,
        unavailable_replicas=max(0, total - available),
    )
    if d.status.HasField("collision_count"):
        st.collision_count = d.status.collision_count
    st.conditions.extend(d.status.conditions)
    if available >= replicas(d) - max_unavailable(d):
        set_condition(st, new_condition(AVAILABLE, "True", MIN_REPLICAS_AVAILABLE,
                                        "Deployment has minimum availability."))
    else:
        set_condition(st, new_condition(AVAILABLE, "False", MIN_REPLICAS_UNAVAILABLE,
                                        "Deployment does not have minimum availability."))
    return st
