"""Strategies of the core (v1) kinds, one module per kind."""
