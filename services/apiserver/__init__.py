"""The pybernetes API server: the only component that talks to etcd."""
