"""ClusterRoleAggregationController (kube-controller-manager's clusterrole-aggregation): a ClusterRole with an
aggregationRule gets as rules the union of the rules of every ClusterRole its clusterRoleSelectors select (admin,
edit and view gather the `rbac.authorization.k8s.io/aggregate-to-*` roles). Any ClusterRole change requeues
every aggregated role, as labels may have moved a role in or out of one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pybernetes import errors
from pybernetes.api import rbacrules
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from pybernetes.cache import InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.clusterroleaggregation")

NAME = "clusterrole-aggregation"


class ClusterRoleAggregationController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 1) -> None:
        self.client = client
        self.workers = workers
        self.roles = factory.informer_for(rbac.ClusterRole)
        self.lister = self.roles.lister()
        self.controller = Controller(NAME, informers=[self.roles])
        self.queue = self.controller.add_queue(NAME, self.sync, workers=workers)
        self.roles.add_event_handler(self._requeue_all, lambda _o, _n: self._requeue_all(None),
                                     lambda _o: self._requeue_all(None))

    def _requeue_all(self, _obj: Any) -> None:
        for r in self.lister.list():
            if r.HasField("aggregation_rule"):
                self.queue.add(r.metadata.name)

    async def sync(self, name: str) -> None:
        role = self.lister.get("", name)
        if role is None or not role.HasField("aggregation_rule"):
            return
        rules = rbacrules.aggregated_rules(role, self.lister.list())
        if list(role.rules) == rules:
            return
        new = rbac.ClusterRole()
        new.CopyFrom(role)
        del new.rules[:]
        new.rules.extend(rules)
        try:
            await self.client.update(new, field_manager=NAME)
        except errors.NotFound:
            return
        log.info("aggregated cluster role clusterrole=%s rules=%d", name, len(rules))

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)
