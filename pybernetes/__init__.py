"""pybernetes, the shared library every component, pbctl and the lab build on: the API kinds and their table
(`api`), the typed client (`client`), informers (`cache`), work queues and the one controller loop
(`workqueue`, `controller`), leader election, events, metrics and health, options, ports and gRPC plumbing.

It imports no component (services, node_agent, netproxy), nor pbctl or the lab (import-linter contracts).
"""
