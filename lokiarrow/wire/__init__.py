"""Loki's wire formats, shared by the server and the agent: push bodies (protobuf + snappy, JSON)."""

from lokiarrow.wire.push import decode_push
from lokiarrow.wire.push_protobuf import encode_push_request
from lokiarrow.wire.stream import PushStream

__all__ = ["PushStream", "decode_push", "encode_push_request"]
