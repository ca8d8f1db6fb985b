"""A grpcio client of Loki's gRPC API (Pusher/Push, Querier Query/Label/Series), for the tests."""

from __future__ import annotations

from typing import Any

import grpc

from lokiarrow.wire import logproto

NS = 10**9


def stamp(message: Any, field: str, ns: int) -> None:
    getattr(message, field).seconds, getattr(message, field).nanos = divmod(ns, NS)


class LokiGrpc:
    """Calls over one channel; `tenant` goes as the `x-scope-orgid` metadata."""

    def __init__(self, target: str, tenant: str | None = None) -> None:
        self.channel = grpc.insecure_channel(target)
        self.metadata = [("x-scope-orgid", tenant)] if tenant else []
        c = self.channel
        self._push = c.unary_unary("/logproto.Pusher/Push", request_serializer=bytes,
                                   response_deserializer=logproto.PushResponse.FromString)
        self._query = c.unary_stream("/logproto.Querier/Query",
                                     request_serializer=logproto.QueryRequest.SerializeToString,
                                     response_deserializer=logproto.QueryResponse.FromString)
        self._label = c.unary_unary("/logproto.Querier/Label",
                                    request_serializer=logproto.LabelRequest.SerializeToString,
                                    response_deserializer=logproto.LabelResponse.FromString)
        self._series = c.unary_unary("/logproto.Querier/Series",
                                     request_serializer=logproto.SeriesRequest.SerializeToString,
                                     response_deserializer=logproto.SeriesResponse.FromString)

    def push(self, streams: dict[str, list[tuple[int, str]]], **kw: Any) -> Any:
        request = logproto.PushRequest()
        for labels, entries in streams.items():
            stream = request.streams.add(labels=labels)
            for ts, line in entries:
                entry = stream.entries.add(line=line)
                stamp(entry, "timestamp", ts)
        return self.push_raw(request.SerializeToString(), **kw)

    def push_raw(self, body: bytes, **kw: Any) -> Any:
        return self._push(body, metadata=self.metadata, timeout=30, **kw)

    def query(self, selector: str, start: int, end: int, limit: int = 100, backward: bool = True) -> list[Any]:
        request = logproto.QueryRequest(selector=selector, limit=limit, direction=1 if backward else 0)
        stamp(request, "start", start)
        stamp(request, "end", end)
        return list(self._query(request, metadata=self.metadata, timeout=30))

    def label(self, start: int, end: int, name: str = "", query: str = "") -> list[str]:
        request = logproto.LabelRequest(name=name, values=bool(name), query=query)
        stamp(request, "start", start)
        stamp(request, "end", end)
        return list(self._label(request, metadata=self.metadata, timeout=30).values)

    def series(self, groups: list[str], start: int, end: int) -> list[dict[str, str]]:
        request = logproto.SeriesRequest(groups=groups)
        stamp(request, "start", start)
        stamp(request, "end", end)
        answer = self._series(request, metadata=self.metadata, timeout=30)
        return [{p.key: p.value for p in s.labels} for s in answer.series]

    def close(self) -> None:
        self.channel.close()


def entries(responses: list[Any]) -> list[tuple[str, int, str]]:
    """(labels, ns, line) of every entry of Query's responses, in the order received."""
    return [(s.labels, e.timestamp.seconds * NS + e.timestamp.nanos, e.line)
            for r in responses for s in r.streams for e in s.entries]
