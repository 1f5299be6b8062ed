"""ServiceAccounts: validation of the secret references."""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs, child, index
from services.apiserver.registry.formats import is_dns1123_subdomain
from services.apiserver.registry.kindstrategy import KindStrategy


def validate(sa: core.ServiceAccount, errs: Errs) -> None:
    for i, s in enumerate(sa.secrets):
        if s.name:
            errs.invalid_each(child(index("secrets", i), "name"), s.name, is_dns1123_subdomain(s.name))


STRATEGY = KindStrategy(core.ServiceAccount, validate=validate)
