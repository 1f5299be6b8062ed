from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
MERGE_KEY_FIELD_NUMBER: _ClassVar[int]
merge_key: _descriptor.FieldDescriptor
REQUIRED_FIELD_NUMBER: _ClassVar[int]
required: _descriptor.FieldDescriptor
DOC_FIELD_NUMBER: _ClassVar[int]
doc: _descriptor.FieldDescriptor
