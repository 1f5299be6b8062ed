"""The node agent (pb-kubelet): runs the pods bound to one node through containerd's CRI."""
