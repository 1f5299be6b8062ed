"""pb-proxy: Services and Endpoints turned into netfilter rules (issue: service networking)."""
