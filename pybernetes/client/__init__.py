"""The API client: `client.Client` (typed async gRPC, errors as pybernetes.errors) and `config` (the
kubeconfig-shaped client configuration file)."""
