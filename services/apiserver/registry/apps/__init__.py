"""Strategies of the apps/v1 kinds, one module per kind."""
