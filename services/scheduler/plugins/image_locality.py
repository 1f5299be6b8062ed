"""ImageLocality: prefer nodes that already have the pod's images, weighted by how widely they spread."""

from __future__ import annotations

from services.scheduler.cache import NodeInfo, PodInfo
from services.scheduler.framework import MAX_NODE_SCORE, NODE_ADD, NODE_UPDATE, SKIP, CycleState, ScorePlugin

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


class ImageLocality(ScorePlugin):
    name = "ImageLocality"
    events = frozenset({NODE_ADD, NODE_UPDATE})

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> str | None:
        have = state.cache.image_nodes
        return None if any(i in have for i in pod.images) else SKIP

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        total = len(state.all_nodes) or 1
        spread = state.cache.image_nodes
        max_threshold = MAX_CONTAINER_THRESHOLD * max(1, len(pod.images))
        out = []
        for n in nodes:
            s = 0.0
            for img in pod.images:
                size = n.images.get(img)
                if size:
                    s += size * (spread.get(img, 0) / total)
            s = min(max(s, MIN_THRESHOLD), max_threshold)
            out.append(int(MAX_NODE_SCORE * (s - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)))
        return out
