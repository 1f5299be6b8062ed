"""describe daemonset / statefulset: kubectl's DaemonSetDescriber and StatefulSetDescriber."""

from __future__ import annotations

from collections.abc import Sequence

from pbctl.describers.pod import describe_template
from pbctl.describers.writer import Writer, fmt_time, labels, pods_status, print_annotations
from pybernetes.api import cells, objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core


def describe_daemonset(w: Writer, ds: apps.DaemonSet, pods: Sequence[core.Pod]) -> None:
    md, spec, st = ds.metadata, ds.spec, ds.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    w.w(0, f"Selector:\t{cells.format_selector(spec.selector)}\n")
    w.w(0, f"Node-Selector:\t{cells.format_labels(spec.template.spec.node_selector)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    w.w(0, f"Desired Number of Nodes Scheduled: {st.desired_number_scheduled}\n")
    w.w(0, f"Current Number of Nodes Scheduled: {st.current_number_scheduled}\n")
    w.w(0, f"Number of Nodes Scheduled with Up-to-date Pods: {st.updated_number_scheduled}\n")
    w.w(0, f"Number of Nodes Scheduled with Available Pods: {st.number_available}\n")
    w.w(0, f"Number of Nodes Misscheduled: {st.number_misscheduled}\n")
    pods_status(w, pods)
    describe_template(w, spec.template)


def describe_statefulset(w: Writer, ss: apps.StatefulSet, pods: Sequence[core.Pod]) -> None:
    md, spec, st = ss.metadata, ss.spec, ss.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.creation_timestamp)}\n")
    w.w(0, f"Selector:\t{cells.format_selector(spec.selector)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    replicas = objects.replicas(ss)
    w.w(0, f"Replicas:\t{replicas} desired | {st.replicas} total\n")
    w.w(0, f"Update Strategy:\t{spec.update_strategy.type}\n")
    ru = spec.update_strategy.rolling_update
    if spec.update_strategy.HasField("rolling_update") and ru.HasField("partition"):
        w.w(1, f"Partition:\t{ru.partition}\n")
    pods_status(w, pods)
    describe_template(w, spec.template)
    w.w(0, "Volume Claims:\t<none>\n")
