"""Admission: the plugins every write passes between decoding and storage, as kube-apiserver's admission chain.

One module per plugin (namespacelifecycle, limitranger, serviceaccount, noderestriction, podsecurity,
defaulttolerationseconds, resourcequota); attributes.py is what they see, chain.py runs them in Kubernetes'
order and resolves the --enable/--disable-admission-plugins flags.
"""

from __future__ import annotations

from .attributes import CONNECT, CREATE, DELETE, UPDATE, Attributes, Plugin, forbidden
from .chain import DEFAULT_ON, ORDERED, Chain, enabled_plugins, new_chain, warnings

__all__ = ["CONNECT", "CREATE", "DEFAULT_ON", "DELETE", "ORDERED", "UPDATE", "Attributes", "Chain", "Plugin",
           "enabled_plugins", "forbidden", "new_chain", "warnings"]
