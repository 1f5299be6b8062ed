"""Generated messages of the core (v1) kinds."""
