"""pb-controller-manager's controllers: one module per controller (see services/controllers/main.py).

replicaset (ReplicaSet + ReplicationController), deployment (+ deployment_util), garbagecollector,
namespace, endpoints, nodelifecycle, nodeipam, serviceaccount, servicelb. Each runs through the one loop,
`pybernetes.controller.Controller`; controller_utils holds what the ReplicaSet and Deployment controllers share.
statemetrics exports kube-state-metrics' object metrics from the same caches; main runs it all.
"""
