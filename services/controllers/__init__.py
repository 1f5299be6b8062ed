"""pb-controller-manager's controllers: one module per controller (see services/controllers/main.py).

replicaset (ReplicaSet + ReplicationController), deployment (+ deployment_util), garbagecollector,
namespace, endpoints, nodelifecycle, nodeipam, serviceaccount; controller_utils holds what they share.
"""
