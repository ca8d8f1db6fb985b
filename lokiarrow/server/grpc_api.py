"""Loki's gRPC API beside the HTTP one: `logproto.Pusher/Push` and the `logproto.Querier` calls
`Query`, `Label` and `Series`, on `server.grpc_listen_port` (9095).

grpcio serves generic method handlers whose messages are those of lokiarrow/wire/logproto.py (no
generated code). Each call:
1. takes its tenant from the `x-scope-orgid` metadata, as HTTP takes `X-Scope-OrgID`;
2. runs what the HTTP route runs: a push goes through the same decoder, validation, limits and WAL
   (`PushRequest` bytes are read by the columnar decoder, as a protobuf HTTP body after snappy);
   `Query` is a log query (`selector`, the query text; Loki's JSON `plan` is not read), answered as
   a stream of `QueryResponse`s of at most BATCH entries with the labels the HTTP answer has;
   `Label` gives names, or the values of `name` with `values`; `Series` the label sets matching
   `groups`; a time left unset means the last LOOKBACK, as Loki's HTTP defaults;
3. answers a refusal with the gRPC code nearest to Loki's HTTP status and Loki's message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc

from lokiarrow.errors import BadRequest, LokiError
from lokiarrow.exec.engine import RangeRequest
from lokiarrow.ingest.distributor import prepare_streams
from lokiarrow.logql.ast import LogExpr
from lokiarrow.logql.parser import parse_expr
from lokiarrow.model import labels_string
from lokiarrow.server.deps import Services, tenant_of
from lokiarrow.server.routes_push import store_prepared
from lokiarrow.wire import logproto
from lokiarrow.wire.push_protobuf import decode_push_request

log = logging.getLogger(__name__)

BATCH = 1000                      # entries per QueryResponse
LOOKBACK_NS = 6 * 3600 * 10**9    # an unset start: this long before the end
DEFAULT_LIMIT = 100               # a Query without a limit, as Loki's HTTP default
WORKERS = 8
_NS = 10**9
_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
          422: grpc.StatusCode.INVALID_ARGUMENT, 429: grpc.StatusCode.RESOURCE_EXHAUSTED,
          501: grpc.StatusCode.UNIMPLEMENTED, 504: grpc.StatusCode.DEADLINE_EXCEEDED}


def serve_grpc(svc: Services, address: str, port: int, push: bool = True,
               query: bool = True) -> tuple[grpc.Server, int]:
    """Start the gRPC server (the Pusher service when `push`, the Querier when `query`: a target's
    part); it and the port it listens on (the given one, or a free one for 0)."""
    api = _Api(svc)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="grpc"))
    pusher = grpc.method_handlers_generic_handler("logproto.Pusher", {
            "Push": grpc.unary_unary_rpc_method_handler(
                _guarded(api.push), request_deserializer=bytes,
                response_serializer=logproto.PushResponse.SerializeToString),
        })
    querier = grpc.method_handlers_generic_handler("logproto.Querier", {
            "Query": grpc.unary_stream_rpc_method_handler(
                _guarded_stream(api.query), request_deserializer=logproto.QueryRequest.FromString,
                response_serializer=logproto.QueryResponse.SerializeToString),
            "Label": grpc.unary_unary_rpc_method_handler(
                _guarded(api.label), request_deserializer=logproto.LabelRequest.FromString,
                response_serializer=logproto.LabelResponse.SerializeToString),
            "Series": grpc.unary_unary_rpc_method_handler(
                _guarded(api.series), request_deserializer=logproto.SeriesRequest.FromString,
                response_serializer=logproto.SeriesResponse.SerializeToString),
        })
    server.add_generic_rpc_handlers(tuple(h for h, on in ((pusher, push), (querier, query)) if on))
    bound = server.add_insecure_port(f"{address}:{port}")
    server.start()
    log.info("gRPC listening on %s:%d", address, bound)
    return server, bound


class _Api:
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def _tenant(self, context: grpc.ServicerContext) -> str:
        org = next((v for k, v in context.invocation_metadata() if k == "x-scope-orgid"), "")
        return tenant_of(self.svc.config.auth_enabled, str(org))

    def push(self, raw: bytes, context: grpc.ServicerContext) -> Any:
        tenant = self._tenant(context)
        prepared = prepare_streams(tenant, decode_push_request(raw), self.svc.limits(tenant), time.time_ns())
        store_prepared(self.svc, tenant, prepared)
        return logproto.PushResponse()

    def query(self, req: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        tenant = self._tenant(context)
        if not req.selector:
            raise BadRequest("a query is required in `selector` (query plans are not read)")
        if not isinstance(parse_expr(req.selector), LogExpr):
            raise BadRequest("only log queries are answered by Query")
        start, end = _range(req)
        answer = self.svc.querier.query_range(tenant, RangeRequest(
            req.selector, start, end, req.limit or DEFAULT_LIMIT, backward=req.direction == 1))
        for stream in answer["result"]:
            text = labels_string(stream["stream"])
            values = stream["values"]
            for first in range(0, len(values), BATCH):
                out = logproto.QueryResponse()
                entries = out.streams.add(labels=text).entries
                for ts, line, *_ in values[first:first + BATCH]:
                    entry = entries.add(line=line)
                    entry.timestamp.seconds, entry.timestamp.nanos = divmod(int(ts), _NS)
                yield out

    def label(self, req: Any, context: grpc.ServicerContext) -> Any:
        tenant = self._tenant(context)
        start, end = _range(req)
        querier, query = self.svc.querier, req.query or None
        if req.values:
            if not req.name:
                raise BadRequest("a label name is required with `values`")
            found = querier.label_values(tenant, req.name, start, end, query)
        else:
            found = querier.labels(tenant, start, end, query)
        return logproto.LabelResponse(values=found)

    def series(self, req: Any, context: grpc.ServicerContext) -> Any:
        tenant = self._tenant(context)
        start, end = _range(req)
        out = logproto.SeriesResponse()
        for labels in self.svc.querier.series(tenant, list(req.groups), start, end):
            pairs = out.series.add().labels
            for key, value in labels.items():
                pairs.add(key=key, value=value)
        return out


def _range(req: Any) -> tuple[int, int]:
    """A request's start and end in ns; unset ones as Loki's HTTP defaults."""
    end = _ns(req.end) if req.HasField("end") else time.time_ns()
    start = _ns(req.start) if req.HasField("start") else end - LOOKBACK_NS
    if end < start:
        raise BadRequest("the query time range is invalid: end is before start")
    return start, end


def _ns(stamp: Any) -> int:
    return int(stamp.seconds) * _NS + int(stamp.nanos)


def _abort(context: grpc.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, LokiError):
        context.abort(_CODES.get(exc.status, grpc.StatusCode.INTERNAL), exc.message)
    log.exception("unexpected error in a gRPC call")
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


def _guarded(call: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
    def run(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return call(request, context)
        except Exception as exc:  # every refusal reaches the client as a status, never a crash
            _abort(context, exc)
    return run


def _guarded_stream(call: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
                    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from call(request, context)
        except Exception as exc:
            _abort(context, exc)
    return run
