"""Strategies of the discovery.k8s.io/v1 kinds, one module per kind."""
