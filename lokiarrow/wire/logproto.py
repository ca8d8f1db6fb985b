"""Loki's `logproto` messages (push, and the querier's gRPC calls), built at import from
descriptors written here in Python.

The field numbers are those of grafana/loki `pkg/push/push.proto`:

    PushRequest      { repeated StreamAdapter streams = 1; string format = 2; }
    StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
    EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
                       repeated LabelPairAdapter structuredMetadata = 3; repeated LabelPairAdapter parsed = 4; }
    LabelPairAdapter { string name = 1; string value = 2; }

and of `pkg/logproto/logproto.proto` for the querier's calls (lokiarrow/server/grpc_api.py):

    QueryRequest     { string selector = 1; uint32 limit = 2; Timestamp start = 3; Timestamp end = 4;
                       Direction direction = 5 (FORWARD 0, BACKWARD 1); Plan plan = 9; }
    Plan             { bytes raw = 1; }   (Loki's JSON form of the query tree)
    QueryResponse    { repeated StreamAdapter streams = 1; repeated string warnings = 3; }
    LabelRequest     { string name = 1; bool values = 2; Timestamp start = 3; Timestamp end = 4; string query = 5; }
    LabelResponse    { repeated string values = 1; }
    SeriesRequest    { Timestamp start = 1; Timestamp end = 2; repeated string groups = 3; }
    SeriesResponse   { repeated SeriesIdentifier series = 1; }
    SeriesIdentifier { repeated LabelsEntry labels = 1; }   LabelsEntry { string key = 1; string value = 2; }

Three families of classes share the push messages' wire layout:
- `logproto.*`: the messages as Loki defines them (proto3 `string` fields, UTF-8 checked by upb).
- `logproto_raw.*`: the same with `bytes` in place of `string`, for bodies whose text is not valid
  UTF-8 (Go's Loki accepts those; the decoder replaces the bad bytes with U+FFFD).
- `logproto_columns.*`: *views* for the fast columnar decoder. Protobuf appends every occurrence of
  a repeated field, so the concatenation of many entries parsed as one `EntryColumns` yields all their
  timestamps, lines and metadata pairs as flat lists, built in C; see `push_protobuf`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

_F = descriptor_pb2.FieldDescriptorProto
_MSG, _U64, _I64, _I32 = _F.TYPE_MESSAGE, _F.TYPE_UINT64, _F.TYPE_INT64, _F.TYPE_INT32
_TEXT = -1   # placeholder: string in `logproto`, bytes in `logproto_raw`

# message -> fields as (name, number, type, repeated, message type)
_PUSH: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "LabelPairAdapter": [("name", 1, _TEXT, False, ""), ("value", 2, _TEXT, False, "")],
    "EntryAdapter": [("timestamp", 1, _MSG, False, ".google.protobuf.Timestamp"),
                     ("line", 2, _TEXT, False, ""),
                     ("structuredMetadata", 3, _MSG, True, "LabelPairAdapter"),
                     ("parsed", 4, _MSG, True, "LabelPairAdapter")],
    "StreamAdapter": [("labels", 1, _TEXT, False, ""), ("entries", 2, _MSG, True, "EntryAdapter"),
                      ("hash", 3, _U64, False, "")],
    "PushRequest": [("streams", 1, _MSG, True, "StreamAdapter"), ("format", 2, _TEXT, False, "")],
    "PushResponse": [],
}
_TS, _U32, _BOOL = ".google.protobuf.Timestamp", _F.TYPE_UINT32, _F.TYPE_BOOL
_QUERY: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "QueryRequest": [("selector", 1, _TEXT, False, ""), ("limit", 2, _U32, False, ""),
                     ("start", 3, _MSG, False, _TS), ("end", 4, _MSG, False, _TS),
                     ("direction", 5, _I32, False, ""), ("plan", 9, _MSG, False, "Plan")],
    "Plan": [("raw", 1, _F.TYPE_BYTES, False, "")],
    "QueryResponse": [("streams", 1, _MSG, True, "StreamAdapter"), ("warnings", 3, _TEXT, True, "")],
    "LabelRequest": [("name", 1, _TEXT, False, ""), ("values", 2, _BOOL, False, ""),
                     ("start", 3, _MSG, False, _TS), ("end", 4, _MSG, False, _TS), ("query", 5, _TEXT, False, "")],
    "LabelResponse": [("values", 1, _TEXT, True, "")],
    "SeriesRequest": [("start", 1, _MSG, False, _TS), ("end", 2, _MSG, False, _TS), ("groups", 3, _TEXT, True, "")],
    "SeriesResponse": [("series", 1, _MSG, True, "SeriesIdentifier")],
    "SeriesIdentifier": [("labels", 1, _MSG, True, "LabelsEntry")],
    "LabelsEntry": [("key", 1, _TEXT, False, ""), ("value", 2, _TEXT, False, "")],
}
_B, _S = _F.TYPE_BYTES, _F.TYPE_STRING
_COLUMNS: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "StreamColumns": [("labels", 1, _TEXT, False, ""), ("entries", 2, _B, True, "")],
    "PushColumns": [("streams", 1, _MSG, True, "StreamColumns")],
    "EntryColumns": [("timestamp", 1, _B, True, ""), ("line", 2, _S, True, ""),
                     ("structuredMetadata", 3, _B, True, ""), ("parsed", 4, _B, True, "")],
    "TimestampColumns": [("seconds", 1, _I64, True, ""), ("nanos", 2, _I32, True, "")],
    "LabelPairColumns": [("name", 1, _S, True, ""), ("value", 2, _S, True, "")],
}


def _file(package: str, messages: dict[str, list[tuple[str, int, int, bool, str]]],
          text: int) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"lokiarrow/{package}.proto", package=package, syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"])
    for message, fields in messages.items():
        desc = proto.message_type.add(name=message)
        for name, number, kind, repeated, type_name in fields:
            field = desc.field.add(name=name, number=number, type=text if kind == _TEXT else kind,
                                   label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if type_name:
                field.type_name = type_name if type_name.startswith(".") else f".{package}.{type_name}"
    return proto


def _classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(_file("logproto", {**_PUSH, **_QUERY}, _S))
    pool.Add(_file("logproto_raw", _PUSH, _B))
    pool.Add(_file("logproto_columns", _COLUMNS, _S))
    pool.Add(_file("logproto_columns_raw", {"StreamColumns": _COLUMNS["StreamColumns"],
                                            "PushColumns": _COLUMNS["PushColumns"]}, _B))
    return {f"{package}.{name}": message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
            for package, names in (("logproto", {**_PUSH, **_QUERY}), ("logproto_raw", _PUSH),
                                   ("logproto_columns", _COLUMNS),
                                   ("logproto_columns_raw", ("StreamColumns", "PushColumns")))
            for name in names}


_CLASSES = _classes()
PushRequest = _CLASSES["logproto.PushRequest"]
StreamAdapter = _CLASSES["logproto.StreamAdapter"]
EntryAdapter = _CLASSES["logproto.EntryAdapter"]
LabelPairAdapter = _CLASSES["logproto.LabelPairAdapter"]
PushResponse = _CLASSES["logproto.PushResponse"]
RawEntryAdapter = _CLASSES["logproto_raw.EntryAdapter"]
PushColumns = _CLASSES["logproto_columns.PushColumns"]
RawPushColumns = _CLASSES["logproto_columns_raw.PushColumns"]
EntryColumns = _CLASSES["logproto_columns.EntryColumns"]
TimestampColumns = _CLASSES["logproto_columns.TimestampColumns"]
LabelPairColumns = _CLASSES["logproto_columns.LabelPairColumns"]
QueryRequest = _CLASSES["logproto.QueryRequest"]
QueryResponse = _CLASSES["logproto.QueryResponse"]
LabelRequest = _CLASSES["logproto.LabelRequest"]
LabelResponse = _CLASSES["logproto.LabelResponse"]
SeriesRequest = _CLASSES["logproto.SeriesRequest"]
SeriesResponse = _CLASSES["logproto.SeriesResponse"]
