"""describe deployment / replicaset / replicationcontroller: replicas, strategy, pod template, conditions."""

from __future__ import annotations

from collections.abc import Sequence

from pbctl.common import REVISION, Ctx
from pbctl.describers.pod import describe_template
from pbctl.describers.writer import (
    Writer,
    controller_of,
    fmt_time,
    ios,
    labels,
    pods_status,
    print_annotations,
    workload_conditions,
)
from pybernetes.api import cells, objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core


async def describe_deployment(ctx: Ctx, w: Writer, d: apps.Deployment, t: float) -> None:
    md, spec, st = d.metadata, d.spec, d.status
    replicas = objects.replicas(d)
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.creation_timestamp)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    w.w(0, f"Selector:\t{cells.format_selector(spec.selector)}\n")
    w.w(0, f"Replicas:\t{replicas} desired | {st.updated_replicas} updated | {st.replicas} total | "
           f"{st.available_replicas} available | {st.unavailable_replicas} unavailable\n")
    stype = spec.strategy.type or "RollingUpdate"
    w.w(0, f"StrategyType:\t{stype}\n")
    w.w(0, f"MinReadySeconds:\t{spec.min_ready_seconds}\n")
    if stype == "RollingUpdate":
        ru = spec.strategy.rolling_update
        w.w(0, f"RollingUpdateStrategy:\t{ios(ru.max_unavailable, '25%')} max unavailable, "
               f"{ios(ru.max_surge, '25%')} max surge\n")
    describe_template(w, spec.template)
    workload_conditions(w, st.conditions)
    rs_all = await ctx.client.list_all(apps.ReplicaSet, namespace=md.namespace)
    owned = [rs for rs in rs_all.items if any(o.uid == md.uid for o in rs.metadata.owner_references)]
    owned.sort(key=lambda rs: int(rs.metadata.annotations.get(REVISION, "0") or 0))
    revision = md.annotations.get(REVISION)
    new = [rs for rs in owned if rs.metadata.annotations.get(REVISION) == revision] if revision else []
    old = [rs for rs in owned if rs not in new and objects.replicas(rs) > 0]

    def rs_text(rs: apps.ReplicaSet) -> str:
        want = objects.replicas(rs)
        return f"{rs.metadata.name} ({rs.status.replicas}/{want} replicas created)"

    w.w(0, f"OldReplicaSets:\t{', '.join(rs_text(r) for r in old) or '<none>'}\n")
    w.w(0, f"NewReplicaSet:\t{rs_text(new[0]) if new else '<none>'}\n")


def describe_replicaset(w: Writer, rs: apps.ReplicaSet | core.ReplicationController, pods: Sequence[core.Pod]
                        ) -> None:
    md, spec, st = rs.metadata, rs.spec, rs.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    if isinstance(rs, apps.ReplicaSet):
        w.w(0, f"Selector:\t{cells.format_selector(rs.spec.selector)}\n")
    else:
        w.w(0, f"Selector:\t{cells.format_labels(rs.spec.selector)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    ctl = controller_of(md)
    if ctl:
        w.w(0, f"Controlled By:\t{ctl}\n")
    want = objects.replicas(rs)
    w.w(0, f"Replicas:\t{st.replicas} current / {want} desired\n")
    pods_status(w, pods)
    describe_template(w, spec.template)
    workload_conditions(w, st.conditions)
