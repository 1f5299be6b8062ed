"""Per-kind API rules the apiserver applies to every write: defaulting, then validation."""

from services.apiserver.registry.defaults import apply_defaults
from services.apiserver.registry.validation import validate, validate_status_update

__all__ = ["apply_defaults", "validate", "validate_status_update"]
