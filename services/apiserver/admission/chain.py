"""The admission chain: the enabled plugins in Kubernetes' order, mutating ones first, then validating ones.

`Chain.admit(a)` runs every mutating plugin's `admit` in order, `Chain.validate(a)` every validating plugin's
`validate`; the first refusal ends the request. `new_chain(store, enable, disable)` resolves
--enable-admission-plugins/--disable-admission-plugins against kube-apiserver's default set and builds the
plugins. Rest (services/apiserver/rest.py) calls the chain on every create, update (status and other
subresources included), delete and binding, for both front ends.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ..options import enabled_admission_plugins
from ..storage.store import Store
from .attributes import Attributes, Plugin
from .defaulttolerationseconds import DefaultTolerationSeconds
from .limitranger import LimitRanger
from .namespacelifecycle import NamespaceLifecycle
from .noderestriction import NodeRestriction
from .podsecurity import PodSecurity
from .resourcequota import ResourceQuota
from .serviceaccount import ServiceAccount

log = logging.getLogger("pybernetes.apiserver.admission")

Factory = Callable[["Options"], Plugin]


class Options:
    """What plugins are built from: the store they read (and ResourceQuota writes) and the toleration flags."""

    def __init__(self, store: Store, toleration_seconds: tuple[int, int] = (300, 300)) -> None:
        self.store = store
        self.toleration_seconds = toleration_seconds


# Each plugin by name, in Kubernetes' order: options.ADMISSION_PLUGINS, the names the flags are checked against
# (tests/unit/test_admission.py holds the two to the same names in the same order).
ORDERED: dict[str, Factory] = {
    "NamespaceLifecycle": lambda o: NamespaceLifecycle(o.store),
    "LimitRanger": lambda o: LimitRanger(o.store),
    "ServiceAccount": lambda o: ServiceAccount(o.store),
    "NodeRestriction": lambda o: NodeRestriction(),
    "PodSecurity": lambda o: PodSecurity(o.store),
    "DefaultTolerationSeconds": lambda o: DefaultTolerationSeconds(*o.toleration_seconds),
    "ResourceQuota": lambda o: ResourceQuota(o.store),
}


class Chain:
    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = list(plugins)
        self.mutating = [p for p in self.plugins if p.mutating]
        self.validating = [p for p in self.plugins if p.validating]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.plugins]

    async def admit(self, a: Attributes) -> None:
        for p in self.mutating:
            await p.admit(a)
        _publish(a)

    async def validate(self, a: Attributes) -> None:
        for p in self.validating:
            await p.validate(a)
        _publish(a)


def new_chain(store: Store, enable: Sequence[str] = (), disable: Sequence[str] = (), *,
              toleration_seconds: tuple[int, int] = (300, 300)) -> Chain:
    opts = Options(store, toleration_seconds)
    names = enabled_admission_plugins(enable, disable)
    return Chain([ORDERED[n](opts) for n in names])


# -- warnings to the client --------------------------------------------------------------------------

_WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("admission_warnings", default=None)


def _publish(a: Attributes) -> None:
    sink = _WARNINGS.get()
    if sink is None:
        if a.warnings:
            log.info("admission warnings resource=%s object=%s/%s warnings=%s", a.plural, a.namespace, a.name,
                     "; ".join(a.warnings))
        return
    sink.extend(w for w in a.warnings if w not in sink)


@contextmanager
def warnings() -> Iterator[list[str]]:
    """Collect the admission warnings of the writes made inside (the HTTP front end sends them as `Warning`
    headers); outside one, warnings are logged."""
    sink: list[str] = []
    token = _WARNINGS.set(sink)
    try:
        yield sink
    finally:
        _WARNINGS.reset(token)
