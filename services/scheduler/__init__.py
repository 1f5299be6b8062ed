"""pb-scheduler: assigns pending pods to nodes through the pods/binding subresource."""
