"""The plugin registry: Kubernetes plugin names -> classes, and the default profile's plugins/weights."""

from __future__ import annotations

from services.scheduler.framework import Plugin
from services.scheduler.plugins.image_locality import ImageLocality
from services.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from services.scheduler.plugins.node_affinity import NodeAffinity
from services.scheduler.plugins.node_basic import NodeName, NodePorts, NodeUnschedulable
from services.scheduler.plugins.resources import NodeResourcesBalancedAllocation, NodeResourcesFit
from services.scheduler.plugins.taints import TaintToleration
from services.scheduler.plugins.topology_spread import PodTopologySpread, SelectorSpread

REGISTRY: dict[str, type[Plugin]] = {
    c.name: c
    for c in (NodeUnschedulable, NodeName, NodePorts, NodeResourcesFit, NodeAffinity, TaintToleration,
              PodTopologySpread, InterPodAffinity, NodeResourcesBalancedAllocation, ImageLocality, SelectorSpread)
}
ALIASES = {"DefaultPodTopologySpread": "SelectorSpread"}

# Kubernetes' default filter order (cheap first) and score weights.
DEFAULT_FILTERS = ["NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
                   "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity"]
DEFAULT_SCORES = [("TaintToleration", 3), ("NodeAffinity", 2), ("NodeResourcesFit", 1),
                  ("PodTopologySpread", 2), ("InterPodAffinity", 2), ("NodeResourcesBalancedAllocation", 1),
                  ("ImageLocality", 1), ("SelectorSpread", 2)]

__all__ = ["ALIASES", "DEFAULT_FILTERS", "DEFAULT_SCORES", "REGISTRY"]
