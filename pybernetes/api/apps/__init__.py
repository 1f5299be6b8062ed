"""Generated messages of the apps/v1 kinds."""
