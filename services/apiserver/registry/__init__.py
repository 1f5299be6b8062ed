"""The apiserver's per-kind strategies: Kubernetes' pkg/registry (not the kind table, pybernetes.api.kinds,
nor an image registry).

For every write the REST layer (services/apiserver/rest.py) defaults the object (`apply_defaults`), validates
it (`validate`, `validate_status_update`) and prepares it for storage (strategy.prepare_for_*); strategy.py
also gives each kind's field-selector attributes. Those three entry modules (defaults, validation, strategy)
are the package's public face. Behind them, each kind's rules live in one module, validation beside defaults
and strategy, ending with that kind's `STRATEGY` (kindstrategy.KindStrategy), collected in strategies.py:

    core/pod.py (and pods/binding), service.py, endpoints.py, replicationcontroller.py, namespace.py,
    node.py, configmap.py, secret.py, event.py, serviceaccount.py;
    apps/deployment.py, replicaset.py; batch/job.py, cronjob.py; coordination/lease.py;
    discovery/endpointslice.py

What several kinds share: field.py (field paths, Go-printed values, the error list `Errs`), formats.py
(names, label values, ports, IPs), metadata.py (ObjectMeta, labels, selectors, conditions), podspec.py,
containers.py, volumes.py (pods and pod templates), workloads.py (selector/template/replica counts of the
workload kinds), required.py (the generic required-field walk), protofields.py (fields named at runtime).
"""

from services.apiserver.registry.defaults import apply_defaults
from services.apiserver.registry.validation import validate, validate_status_update

__all__ = ["apply_defaults", "validate", "validate_status_update"]
