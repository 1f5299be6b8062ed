"""The local lab (`pbctl lab ...`, a pbctl plugin): hosts as network namespaces, every component as a process.

It sits above every component (it starts them and renders containerd's config with node_agent), so it is
a package of its own rather than part of the shared `pybernetes` library, which imports no component.

Utilities the tests and benchmarks share: netns (namespaces joined by a bridge), images (the offline
busybox, nginx, python and pause images, root filesystems from image_rootfs), image_registry
(docker-registry, skopeo pushes, tags, a TCP forwarder), relay (the TCP relay program), prometheus
(a Prometheus from deploy/prometheus, file_sd, promtool checks).

The lab itself: cli (the plugin) -> lifecycle (up/down/stop/start) and status (status, shell, open), which
use control_plane, nodes, image_supply and monitoring (the steps), commands (each component's command
line), health (checks and waits), processes (spawn/stop/record, relays), topology (names, addresses,
Plan), profiles (timing flags), state (state.json), errors (LabError). demo runs the examples on a lab.
"""
