"""Server-side components of pybernetes (apiserver, scheduler, controllers)."""
