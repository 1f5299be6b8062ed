"""apiserver storage: the typed object store (store.py) with one watch cache per resource (watch_cache.py), stored
objects and their keys (objects.py), the etcd client (etcd.py) and the embedded etcd runner (embedded.py)."""
