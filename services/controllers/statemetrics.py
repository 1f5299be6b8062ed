"""Object-state metrics, computed at scrape time from the controller manager's informer caches.

Names and labels as kube-state-metrics, so upstream dashboards and the shipped alert rules apply:
kube_node_status_condition, kube_pod_status_phase, kube_pod_container_status_waiting_reason,
kube_pod_container_status_restarts_total. Only the leader exports them (its caches are the ones running).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory, Lister

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITION_STATUSES = ("true", "false", "unknown")


class StateMetrics(Collector):
    def __init__(self, nodes: Lister[core.Node], pods: Lister[core.Pod]) -> None:
        self.nodes = nodes
        self.pods = pods

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        cond = GaugeMetricFamily("kube_node_status_condition", "The condition of a node.",
                                 labels=["node", "condition", "status"])
        for n in self.nodes.list():
            for c in n.status.conditions:
                for s in CONDITION_STATUSES:
                    cond.add_metric([n.metadata.name, c.type, s], 1.0 if c.status.lower() == s else 0.0)
        yield cond
        phase = GaugeMetricFamily("kube_pod_status_phase", "The pods' current phase.",
                                  labels=["namespace", "pod", "phase"])
        waiting = GaugeMetricFamily("kube_pod_container_status_waiting_reason",
                                    "Why a container is waiting.", labels=["namespace", "pod", "container", "reason"])
        restarts = CounterMetricFamily("kube_pod_container_status_restarts_total",
                                       "Container restarts.", labels=["namespace", "pod", "container"])
        for p in self.pods.list():
            ns, name = p.metadata.namespace, p.metadata.name
            for ph in PHASES:
                phase.add_metric([ns, name, ph], 1.0 if (p.status.phase or "Pending") == ph else 0.0)
            for cs in p.status.container_statuses:
                if cs.state.HasField("waiting") and cs.state.waiting.reason:
                    waiting.add_metric([ns, name, cs.name, cs.state.waiting.reason], 1.0)
                restarts.add_metric([ns, name, cs.name], float(cs.restart_count))
        yield phase
        yield waiting
        yield restarts


def register(factory: InformerFactory) -> StateMetrics:
    collector = StateMetrics(factory.lister_for(core.Node), factory.lister_for(core.Pod))
    REGISTRY.register(collector)
    return collector


def unregister(collector: StateMetrics) -> None:
    REGISTRY.unregister(collector)
