"""The local lab (`pbctl lab ...`, a pbctl plugin): hosts as network namespaces, every component as a process.

It sits above every component (it starts them and renders containerd's config with node_agent), so it is
a package of its own rather than part of the shared `pybernetes` library, which imports no component.
"""
