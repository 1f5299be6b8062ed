"""RBAC in the apiserver: the authorizer over the watch cache (authorizer.py), escalation prevention on
writes of roles and bindings (escalation.py), and Kubernetes' bootstrap policy (bootstrap.py, policy.py).
Rule semantics shared with the aggregation controller live in pybernetes/api/rbacrules.py."""
