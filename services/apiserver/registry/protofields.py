"""Typed access to protobuf fields named at runtime (tables of field names walked in a loop).

The generated stubs type `HasField` with a Literal of each message's own field names, so a name taken
from a table is a plain `str` there; through the `Message` base it is accepted as it is.
"""

from __future__ import annotations

from google.protobuf.message import Message


def has_field(msg: Message, name: str) -> bool:
    """msg.HasField(name) for a field name held in a variable."""
    return msg.HasField(name)


def sub_message(msg: Message, name: str) -> Message:
    """The message field `name` of msg (set or not, as attribute access gives it)."""
    value = getattr(msg, name)
    assert isinstance(value, Message), f"{type(msg).__name__}.{name} is not a message field"
    return value
