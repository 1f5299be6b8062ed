"""Taints and tolerations (v1.Toleration.ToleratesTaint), for the node lifecycle controller and the kubelet.

The scheduler keeps its own copy over plain tuples: it checks millions of pairs per benchmark run.
"""

from __future__ import annotations

from collections.abc import Iterable

from pybernetes.api.core.v1 import core_pb2 as core


def tolerates(tol: core.Toleration, taint: core.Taint) -> bool:
    if tol.effect and tol.effect != taint.effect:
        return False
    if tol.key and tol.key != taint.key:
        return False
    if tol.operator == "Exists":
        return True
    if tol.operator in ("", "Equal"):
        return tol.value == taint.value and (bool(tol.key) or not taint.key)
    return False


def tolerated(tolerations: Iterable[core.Toleration], taint: core.Taint) -> bool:
    return any(tolerates(t, taint) for t in tolerations)
