"""pb-dns: the cluster DNS (Kubernetes DNS-based service discovery), a component of its own."""
