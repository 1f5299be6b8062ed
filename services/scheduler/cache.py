"""The scheduler's view of the cluster: precomputed PodInfo / NodeInfo and the cache of assumed pods.

Everything the filters and scores read per node is computed here once per object change (integer
millicpu and bytes, taints as tuples, compiled selectors), never per filter call. Assumed pods (bound
by this scheduler, watch event not yet seen) are counted on their node so the next decision sees them.
Callers: services.scheduler.scheduler (informer handlers, schedule/bind), plugins (read only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from pybernetes.api import objects, quantity, selectors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import controller_ref

log = logging.getLogger("pybernetes.scheduler.cache")

# Requests assumed for containers that state none, when scoring (Kubernetes' non-zero defaults).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
WILDCARD_IPS = ("", "0.0.0.0", "::")


@lru_cache(maxsize=4096)
def _milli(text: str) -> int:
    try:
        return quantity.milli_value(text)
    except quantity.QuantityError:
        return 0


@lru_cache(maxsize=4096)
def _units(text: str) -> int:
    try:
        return quantity.value(text)
    except quantity.QuantityError:
        return 0


@dataclass(slots=True)
class Resources:
    """Integer resource amounts: cpu in millicores, memory/ephemeral in bytes, the rest in units."""

    cpu: int = 0
    mem: int = 0
    eph: int = 0
    pods: int = 0
    scalars: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_map(cls, m: Mapping[str, meta.Quantity]) -> Resources:
        r = cls()
        for name, q in m.items():
            if name == "cpu":
                r.cpu = _milli(q.string)
            elif name == "memory":
                r.mem = _units(q.string)
            elif name == "ephemeral-storage":
                r.eph = _units(q.string)
            elif name == "pods":
                r.pods = _units(q.string)
            else:
                r.scalars[name] = _units(q.string)
        return r

    def add(self, o: Resources) -> None:
        self.cpu += o.cpu
        self.mem += o.mem
        self.eph += o.eph
        for k, v in o.scalars.items():
            self.scalars[k] = self.scalars.get(k, 0) + v

    def max_with(self, o: Resources) -> None:
        self.cpu = max(self.cpu, o.cpu)
        self.mem = max(self.mem, o.mem)
        self.eph = max(self.eph, o.eph)
        for k, v in o.scalars.items():
            self.scalars[k] = max(self.scalars.get(k, 0), v)

    def copy(self) -> Resources:
        return Resources(self.cpu, self.mem, self.eph, self.pods, dict(self.scalars))


# -- compiled selectors ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRequirement:
    key: str
    op: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "In":
            return labels.get(self.key) in self.values
        if op == "NotIn":
            return labels.get(self.key) not in self.values
        if op == "Exists":
            return self.key in labels
        if op == "DoesNotExist":
            return self.key not in labels
        if op in ("Gt", "Lt"):
            have = labels.get(self.key)
            if have is None or len(self.values) != 1:
                return False
            try:
                a, b = int(have), int(next(iter(self.values)))
            except ValueError:
                return False
            return a > b if op == "Gt" else a < b
        return False


@dataclass(frozen=True, slots=True)
class NodeTerm:
    """A NodeSelectorTerm: all expressions (labels) and fields (metadata.name) must match; empty matches none."""

    expressions: tuple[NodeRequirement, ...]
    fields: tuple[NodeRequirement, ...]

    @classmethod
    def compile(cls, t: core.NodeSelectorTerm) -> NodeTerm:
        return cls(tuple(NodeRequirement(e.key, e.operator, frozenset(e.values)) for e in t.match_expressions),
                   tuple(NodeRequirement(e.key, e.operator, frozenset(e.values)) for e in t.match_fields))

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        if not self.expressions and not self.fields:
            return False
        for r in self.expressions:
            if not r.matches(labels):
                return False
        for r in self.fields:
            if r.key != "metadata.name" or not r.matches({"metadata.name": name}):
                return False
        return True


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A PodAffinityTerm compiled: which pods it selects and over which topology key."""

    selector: selectors.LabelSelector
    namespaces: frozenset[str]
    all_namespaces: bool
    topology_key: str
    weight: int = 0

    @classmethod
    def compile(cls, t: core.PodAffinityTerm, pod: core.Pod, weight: int = 0) -> AffinityTerm:
        sel = selectors.from_message(t.label_selector) if t.HasField("label_selector") else selectors.NOTHING
        labels = pod.metadata.labels
        extra = [selectors.Requirement(k, "=", frozenset([labels[k]])) for k in t.match_label_keys if k in labels]
        extra += [selectors.Requirement(k, "notin", frozenset([labels[k]]))
                  for k in t.mismatch_label_keys if k in labels]
        if extra and not sel.nothing:
            sel = selectors.LabelSelector((*sel.requirements, *extra))
        ns = frozenset(t.namespaces)
        # An empty namespaceSelector ({}) selects every namespace; a non-empty one is approximated by
        # the namespaces it names through kubernetes.io/metadata.name, if any.
        all_ns = False
        if t.HasField("namespace_selector"):
            nss = t.namespace_selector
            if not nss.match_labels and not nss.match_expressions:
                all_ns = True
            elif "kubernetes.io/metadata.name" in nss.match_labels:
                ns = ns | {nss.match_labels["kubernetes.io/metadata.name"]}
        if not ns and not all_ns:
            ns = frozenset([pod.metadata.namespace])
        return cls(sel, ns, all_ns, t.topology_key, weight)

    def matches(self, p: PodInfo) -> bool:
        return (self.all_namespaces or p.namespace in self.namespaces) and self.selector.matches(p.labels)


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool  # DoNotSchedule
    selector: selectors.LabelSelector
    min_domains: int
    honor_affinity: bool
    honor_taints: bool

    @classmethod
    def compile(cls, c: core.TopologySpreadConstraint, pod: core.Pod) -> SpreadConstraint:
        sel = selectors.from_message(c.label_selector) if c.HasField("label_selector") else selectors.NOTHING
        labels = pod.metadata.labels
        extra = [selectors.Requirement(k, "=", frozenset([labels[k]])) for k in c.match_label_keys if k in labels]
        if extra and not sel.nothing:
            sel = selectors.LabelSelector((*sel.requirements, *extra))
        return cls(max(1, c.max_skew), c.topology_key, c.when_unsatisfiable != "ScheduleAnyway", sel,
                   c.min_domains if c.HasField("min_domains") else 1,
                   (c.node_affinity_policy or "Honor") == "Honor", (c.node_taints_policy or "Ignore") == "Honor")


Toleration = tuple[str, str, str, str]  # key, operator, value, effect
Taint = tuple[str, str, str]  # key, value, effect


def tolerates(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    key, value, effect = taint
    for tk, op, tv, te in tolerations:
        if te and te != effect:
            continue
        if tk and tk != key:
            continue
        if op == "Exists" or tv == value:
            return True
    return False


def normalize_image(name: str) -> str:
    """Image references as a node reports them: docker.io/library/ prefix dropped, ':latest' added."""
    n = name
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if n.startswith(prefix):
            n = n[len(prefix):]
            break
    if "@" not in n and ":" not in n.rsplit("/", 1)[-1]:
        n += ":latest"
    return n


# -- PodInfo / NodeInfo -----------------------------------------------------------------------------


class PodInfo:
    """A pod with everything the scheduler reads precomputed (built once per pod version)."""

    __slots__ = (
        "affinity_terms", "anti_affinity_terms", "cpu", "eph", "host_ports", "images", "key", "labels",
        "mem", "name", "namespace", "node_name", "node_selector", "nz_cpu", "nz_mem", "owner_uid", "pod",
        "preferred_affinity", "preferred_anti_affinity", "preferred_node_terms", "priority",
        "required_node_terms", "scalars", "scheduler_name", "spread_constraints", "terminating",
        "tolerations", "uid",
    )

    def __init__(self, pod: core.Pod) -> None:
        md, spec = pod.metadata, pod.spec
        self.pod = pod
        self.namespace, self.name, self.uid = md.namespace, md.name, md.uid
        self.key = objects.key_for(md.namespace, md.name)
        self.labels: dict[str, str] = dict(md.labels)
        self.node_name = spec.node_name
        self.scheduler_name = spec.scheduler_name or "default-scheduler"
        self.priority = spec.priority if spec.HasField("priority") else 0
        self.terminating = md.HasField("deletion_timestamp")
        self.owner_uid = ref.uid if (ref := controller_ref(pod)) is not None else ""
        req, nz = pod_requests(pod)
        self.cpu, self.mem, self.eph, self.scalars = req.cpu, req.mem, req.eph, req.scalars
        self.nz_cpu, self.nz_mem = nz.cpu, nz.mem
        ports = []
        for c in spec.containers:
            for p in c.ports:
                if p.host_port > 0:
                    ports.append((p.host_ip, p.protocol or "TCP", p.host_port))
        self.host_ports: tuple[tuple[str, str, int], ...] = tuple(ports)
        self.tolerations: tuple[Toleration, ...] = tuple(
            (t.key, t.operator or "Equal", t.value, t.effect) for t in spec.tolerations)
        self.node_selector: dict[str, str] = dict(spec.node_selector)
        aff = spec.affinity
        na = aff.node_affinity
        self.required_node_terms: tuple[NodeTerm, ...] | None = None
        if na.HasField("required_during_scheduling_ignored_during_execution"):
            self.required_node_terms = tuple(
                NodeTerm.compile(t) for t in na.required_during_scheduling_ignored_during_execution.node_selector_terms)
        self.preferred_node_terms: tuple[tuple[int, NodeTerm], ...] = tuple(
            (t.weight, NodeTerm.compile(t.preference)) for t in na.preferred_during_scheduling_ignored_during_execution
            if t.weight)
        pa, paa = aff.pod_affinity, aff.pod_anti_affinity
        self.affinity_terms = tuple(AffinityTerm.compile(t, pod)
                                    for t in pa.required_during_scheduling_ignored_during_execution)
        self.anti_affinity_terms = tuple(AffinityTerm.compile(t, pod)
                                         for t in paa.required_during_scheduling_ignored_during_execution)
        self.preferred_affinity = tuple(AffinityTerm.compile(t.pod_affinity_term, pod, t.weight)
                                        for t in pa.preferred_during_scheduling_ignored_during_execution)
        self.preferred_anti_affinity = tuple(AffinityTerm.compile(t.pod_affinity_term, pod, t.weight)
                                             for t in paa.preferred_during_scheduling_ignored_during_execution)
        self.spread_constraints = tuple(SpreadConstraint.compile(c, pod) for c in spec.topology_spread_constraints)
        self.images = tuple(normalize_image(c.image) for c in (*spec.init_containers, *spec.containers) if c.image)

    @property
    def has_affinity(self) -> bool:
        return bool(self.affinity_terms or self.anti_affinity_terms or self.preferred_affinity
                    or self.preferred_anti_affinity)

    def with_node(self, node_name: str) -> PodInfo:
        """A copy bound to `node_name` (an assumed pod); shares the compiled terms."""
        new = PodInfo.__new__(PodInfo)
        for s in PodInfo.__slots__:
            setattr(new, s, getattr(self, s))
        new.node_name = node_name
        return new


def pod_requests(pod: core.Pod) -> tuple[Resources, Resources]:
    """(effective requests, non-zero requests for scoring) as Kubernetes computes them:
    max(sum(containers) + sidecars, each init container + sidecars before it) + overhead."""
    spec = pod.spec
    total, nz = Resources(), Resources()
    for c in spec.containers:
        r = Resources.from_map(c.resources.requests)
        total.add(r)
        nz.cpu += r.cpu or (DEFAULT_MILLI_CPU if "cpu" not in c.resources.requests else 0)
        nz.mem += r.mem or (DEFAULT_MEMORY if "memory" not in c.resources.requests else 0)
    if spec.init_containers:
        sidecars, init_max, nz_init = Resources(), Resources(), Resources()
        for c in spec.init_containers:
            r = Resources.from_map(c.resources.requests)
            if c.HasField("restart_policy") and c.restart_policy == "Always":
                sidecars.add(r)
                total.add(r)
                nz.cpu += r.cpu
                nz.mem += r.mem
                continue
            step = sidecars.copy()
            step.add(r)
            init_max.max_with(step)
            nz_init.cpu = max(nz_init.cpu, sidecars.cpu + (r.cpu or DEFAULT_MILLI_CPU))
            nz_init.mem = max(nz_init.mem, sidecars.mem + (r.mem or DEFAULT_MEMORY))
        total.max_with(init_max)
        nz.cpu, nz.mem = max(nz.cpu, nz_init.cpu), max(nz.mem, nz_init.mem)
    if spec.HasField("resources") and spec.resources.requests:
        pl = Resources.from_map(spec.resources.requests)
        total = pl
        nz.cpu, nz.mem = pl.cpu or nz.cpu, pl.mem or nz.mem
    if spec.overhead:
        oh = Resources.from_map(spec.overhead)
        total.add(oh)
        nz.cpu += oh.cpu
        nz.mem += oh.mem
    return total, nz


class NodeInfo:
    """One node plus what its pods (bound and assumed) use. `node` is None for a node whose pods
    are known but whose Node object is not (deleted, or not seen yet): such nodes are never scored."""

    __slots__ = (
        "affinity_pods",
        "alloc",
        "anti_affinity_pods",
        "generation",
        "hard_taints",
        "images",
        "labels",
        "name",
        "node",
        "nz_cpu",
        "nz_mem",
        "owner_counts",
        "pods",
        "ports",
        "prefer_taints",
        "req",
        "taints",
        "unschedulable",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.node: core.Node | None = None
        self.labels: dict[str, str] = {}
        self.unschedulable = False
        self.taints: tuple[Taint, ...] = ()
        self.hard_taints: tuple[Taint, ...] = ()  # NoSchedule / NoExecute
        self.prefer_taints: tuple[Taint, ...] = ()  # PreferNoSchedule
        self.alloc = Resources()
        self.images: dict[str, int] = {}
        self.req = Resources()
        self.nz_cpu = 0
        self.nz_mem = 0
        self.pods: dict[str, PodInfo] = {}
        self.ports: dict[tuple[str, int], set[str]] = {}
        self.affinity_pods: dict[str, PodInfo] = {}  # pods with any (anti-)affinity term
        self.anti_affinity_pods: dict[str, PodInfo] = {}  # pods with required anti-affinity
        self.owner_counts: dict[str, int] = {}
        self.generation = 0

    def set_node(self, node: core.Node) -> bool:
        """Adopt a new Node version; True when something scheduling reads changed."""
        labels = dict(node.metadata.labels)
        taints = tuple((t.key, t.value, t.effect) for t in node.spec.taints)
        alloc_map = node.status.allocatable if node.status.allocatable else node.status.capacity
        alloc = Resources.from_map(alloc_map)
        alloc.pods = alloc.pods  # explicit: 0 pods allocatable means nothing fits
        images: dict[str, int] = {}
        for img in node.status.images:
            for n in img.names:
                images[normalize_image(n)] = img.size_bytes
        changed = (self.node is None or labels != self.labels or taints != self.taints
                   or node.spec.unschedulable != self.unschedulable or alloc != self.alloc)
        self.node = node
        self.labels, self.taints, self.unschedulable, self.alloc, self.images = (
            labels, taints, node.spec.unschedulable, alloc, images)
        self.hard_taints = tuple(t for t in taints if t[2] in ("NoSchedule", "NoExecute"))
        self.prefer_taints = tuple(t for t in taints if t[2] == "PreferNoSchedule")
        self.generation += 1
        return changed

    def add_pod(self, p: PodInfo) -> None:
        self.pods[p.key] = p
        self.req.add(_req_of(p))
        self.nz_cpu += p.nz_cpu
        self.nz_mem += p.nz_mem
        for ip, proto, port in p.host_ports:
            self.ports.setdefault((proto, port), set()).add(ip)
        if p.has_affinity:
            self.affinity_pods[p.key] = p
        if p.anti_affinity_terms:
            self.anti_affinity_pods[p.key] = p
        if p.owner_uid:
            self.owner_counts[p.owner_uid] = self.owner_counts.get(p.owner_uid, 0) + 1
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        p = self.pods.pop(key, None)
        if p is None:
            return None
        r = self.req
        r.cpu -= p.cpu
        r.mem -= p.mem
        r.eph -= p.eph
        for k, v in p.scalars.items():
            r.scalars[k] = r.scalars.get(k, 0) - v
        self.nz_cpu -= p.nz_cpu
        self.nz_mem -= p.nz_mem
        for ip, proto, port in p.host_ports:
            ips = self.ports.get((proto, port))
            if ips is not None:
                ips.discard(ip)
                if not ips:
                    del self.ports[(proto, port)]
        self.affinity_pods.pop(key, None)
        self.anti_affinity_pods.pop(key, None)
        if p.owner_uid:
            n = self.owner_counts.get(p.owner_uid, 0) - 1
            if n > 0:
                self.owner_counts[p.owner_uid] = n
            else:
                self.owner_counts.pop(p.owner_uid, None)
        self.generation += 1
        return p


def _req_of(p: PodInfo) -> Resources:
    return Resources(p.cpu, p.mem, p.eph, 0, p.scalars)


class SchedulerCache:
    """Node infos and pod states (bound or assumed), updated by informer handlers and the scheduler."""

    def __init__(self, assumed_ttl: float = 30.0) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.pods: dict[str, PodInfo] = {}  # key -> PodInfo of every pod counted on a node
        self.assumed: dict[str, float | None] = {}  # key -> expiry deadline once binding finished
        self.assumed_ttl = assumed_ttl
        self.image_nodes: dict[str, int] = {}  # normalized image -> nodes that have it
        self._list: list[NodeInfo] | None = None
        self.anti_affinity_pod_count = 0
        self.affinity_pod_count = 0
        self.prefer_taint_nodes = 0

    # -- nodes -----------------------------------------------------------------------------------

    def node_list(self) -> list[NodeInfo]:
        """Schedulable candidates (nodes whose Node object is known), in a stable order."""
        if self._list is None:
            self._list = [self.nodes[n] for n in sorted(self.nodes) if self.nodes[n].node is not None]
        return self._list

    def _images_delta(self, ni: NodeInfo, sign: int) -> None:
        for img in ni.images:
            n = self.image_nodes.get(img, 0) + sign
            if n > 0:
                self.image_nodes[img] = n
            else:
                self.image_nodes.pop(img, None)

    def set_node(self, node: core.Node) -> bool:
        """Add or update a node; True when a scheduling-relevant field changed (or it is new)."""
        name = node.metadata.name
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        was_known = ni.node is not None
        if was_known:
            self._images_delta(ni, -1)
            self.prefer_taint_nodes -= bool(ni.prefer_taints)
        changed = ni.set_node(node)
        self._images_delta(ni, +1)
        self.prefer_taint_nodes += bool(ni.prefer_taints)
        if not was_known:
            self._list = None
        return changed

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None or ni.node is None:
            return
        self._images_delta(ni, -1)
        self.prefer_taint_nodes -= bool(ni.prefer_taints)
        ni.node = None
        if not ni.pods:
            del self.nodes[name]
        self._list = None

    # -- pods ------------------------------------------------------------------------------------

    def _place(self, p: PodInfo) -> None:
        ni = self.nodes.get(p.node_name)
        if ni is None:
            ni = self.nodes[p.node_name] = NodeInfo(p.node_name)
        ni.add_pod(p)
        self.pods[p.key] = p
        self.affinity_pod_count += p.has_affinity
        self.anti_affinity_pod_count += bool(p.anti_affinity_terms)

    def _unplace(self, key: str) -> PodInfo | None:
        p = self.pods.pop(key, None)
        if p is None:
            return None
        ni = self.nodes.get(p.node_name)
        if ni is not None:
            ni.remove_pod(key)
            if ni.node is None and not ni.pods:
                del self.nodes[p.node_name]
        self.affinity_pod_count -= p.has_affinity
        self.anti_affinity_pod_count -= bool(p.anti_affinity_terms)
        return p

    def add_pod(self, pod: core.Pod) -> PodInfo:
        """A bound pod seen through the informer (confirms an assumed pod of the same key)."""
        p = PodInfo(pod)
        key = p.key
        self.assumed.pop(key, None)
        self._unplace(key)
        self._place(p)
        return p

    def update_pod(self, pod: core.Pod) -> PodInfo:
        return self.add_pod(pod)

    def remove_pod(self, key: str) -> PodInfo | None:
        self.assumed.pop(key, None)
        return self._unplace(key)

    def assume_pod(self, p: PodInfo) -> None:
        """Count `p` (with node_name set) on its node before the binding is seen."""
        self._unplace(p.key)
        self._place(p)
        self.assumed[p.key] = None

    def confirm_binding(self, old: core.Pod, new: core.Pod) -> bool:
        """The watch event of this scheduler's binding of an assumed pod: when `old` is the very object the assumed
        info was built from and `new` only adds spec.nodeName (all a binding writes that PodInfo reads), the
        assumed info is kept with `new` instead of being rebuilt. False: the caller updates the pod as usual."""
        key = objects.key_for(new.metadata.namespace, new.metadata.name)
        p = self.pods.get(key)
        if (key not in self.assumed or p is None or p.pod is not old or old.spec.node_name
                or new.spec.node_name != p.node_name):
            return False
        del self.assumed[key]
        p.pod = new
        return True

    def finish_binding(self, key: str, now: float) -> None:
        if key in self.assumed:
            self.assumed[key] = now + self.assumed_ttl

    def forget_pod(self, key: str) -> None:
        if key in self.assumed:
            del self.assumed[key]
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def cleanup_assumed(self, now: float) -> list[str]:
        """Drop assumed pods whose binding finished long ago but whose watch event never came."""
        expired = [k for k, d in self.assumed.items() if d is not None and d < now]
        for k in expired:
            log.warning("assumed pod expired pod=%s", k)
            self.forget_pod(k)
        return expired
