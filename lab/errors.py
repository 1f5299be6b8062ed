"""The lab's one error: a step of `lab up`/`down`/`start`/`stop` failed (cli and demo print it and exit 1)."""

from __future__ import annotations


class LabError(Exception):
    """A step failed; the message says what and where to look."""
