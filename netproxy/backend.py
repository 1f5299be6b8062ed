"""The backend contract shared by the nftables and iptables renderers.

A sync is `plan(changes, full)` (pure: computes the script and the state it leads to), `execute(plan)`
(runs `nft -f` / `iptables-restore --noflush`, blocking; on failure the kernel keeps the previous rules
because both tools apply a script as one transaction) and `commit(plan)` (adopts the new state only after
the kernel accepted it). A partial plan touches only the changed service ports' chains and elements; a full
plan rewrites every chain we own and deletes whatever we own but no longer want (found in the kernel on the
first sync, so a restarted proxy replaces its predecessor's rules without flushing them first).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from netproxy.execs import Runner
from netproxy.model import Endpoint, ServicePortInfo, ServicePortName, Unit


@dataclass(frozen=True)
class Options:
    cluster_cidr: str = "10.244.0.0/16"
    masquerade_all: bool = False
    nodeport_addresses: tuple[str, ...] = ()  # CIDRs whose local addresses accept NodePorts; () = all


@dataclass
class Plan:
    full: bool
    script: str
    units: dict[ServicePortName, Unit]
    extra: dict[str, object] = field(default_factory=dict)
    changed: int = 0  # service ports rendered


class Backend(abc.ABC):
    name: ClassVar[str]

    def __init__(self, runner: Runner | None = None, options: Options | None = None) -> None:
        self.runner = runner or Runner()
        self.options = options or Options()
        self.applied: dict[ServicePortName, Unit] = {}
        self.synced_once = False

    @abc.abstractmethod
    def render(self, info: ServicePortInfo, endpoints: tuple[Endpoint, ...]) -> Unit: ...

    @abc.abstractmethod
    def plan(self, changes: Mapping[ServicePortName, Unit | None], *, full: bool) -> Plan:
        """`full`: `changes` holds every wanted unit (None values ignored); else only the changed ones."""

    @abc.abstractmethod
    def execute(self, plan: Plan) -> None: ...

    def commit(self, plan: Plan) -> None:
        self.applied = plan.units
        self.synced_once = True

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Remove every rule, chain, set and table this backend made."""

    @abc.abstractmethod
    def dump(self) -> str:
        """The kernel's current rules of this backend (for tests and debugging)."""

    def next_units(self, changes: Mapping[ServicePortName, Unit | None], full: bool) -> dict[ServicePortName, Unit]:
        if full:
            return {k: v for k, v in changes.items() if v is not None}
        units = dict(self.applied)
        for k, v in changes.items():
            if v is None:
                units.pop(k, None)
            else:
                units[k] = v
        return units

    def set_nodeport_ips(self, ips: Iterable[str]) -> bool:
        """Local addresses that accept NodePorts (with --nodeport-addresses); True when they changed."""
        return False
