"""apiserver storage: etcd client (etcd.py), embedded etcd runner (embedded.py)."""
