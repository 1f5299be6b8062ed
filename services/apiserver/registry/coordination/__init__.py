"""Strategies of the coordination.k8s.io/v1 kinds, one module per kind."""
