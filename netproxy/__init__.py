"""pb-proxy (kube-proxy): Services, Endpoints and Nodes turned into one node's netfilter rules and host-gw routes
(docs/networking.md)."""
