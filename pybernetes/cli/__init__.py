"""pbctl: the kubectl-like command line client (console script `pbctl = pybernetes.cli.main:main`)."""
