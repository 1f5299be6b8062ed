"""pbctl: the kubectl-like command line client (console script `pbctl = pbctl.main:main`)."""
