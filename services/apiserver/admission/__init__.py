"""Admission: the plugins every write passes between decoding and storage, as kube-apiserver's admission chain.

One module per plugin (namespacelifecycle, limitranger, serviceaccount, noderestriction, podsecurity,
defaulttolerationseconds, resourcequota); attributes.py is what they see, chain.py runs them in Kubernetes'
order and resolves the --enable/--disable-admission-plugins flags (the names: ../options.py).
"""

from __future__ import annotations

from .attributes import CONNECT, CREATE, DELETE, UPDATE, Attributes, Plugin, forbidden
from .chain import ORDERED, Chain, new_chain, warnings

__all__ = ["CONNECT", "CREATE", "DELETE", "ORDERED", "UPDATE", "Attributes", "Chain", "Plugin", "forbidden",
           "new_chain", "warnings"]
