"""Generated messages of the shared meta.v1 types (ObjectMeta, Time, Quantity, Status, field options)."""
