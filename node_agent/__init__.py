"""The node agent: runs pods on one node through containerd's CRI."""
