"""Strategies of the rbac.authorization.k8s.io/v1 kinds, one module per kind (role.py holds the rule checks
Role and ClusterRole share, rolebinding.py the subject and roleRef checks both bindings share)."""
