"""A gRPC proxy on grpcio (gRPC's C core) that retries, for meshprobe's tests: the lab's stand-in for a proxy that
retries gRPC statuses, which HAProxy cannot do (its retry-on reads HTTP statuses only).

    python3 retrying_proxy.py --port P --upstream HOST:PORT --retries N --retry-on UNAVAILABLE[,INTERNAL...]
                              [--max-seconds S]

Serves every unary method on 127.0.0.1:P (h2c) and forwards each call, its bytes and metadata unchanged (the
x-request-id the echo counts tries by included), over a channel whose retries are gRPC's own (gRFC A6, the service
config's retryPolicy): a call is tried at most N + 1 times (gRPC caps this at 5), again when it ends with one of the
--retry-on statuses. The proxy retries nothing itself. The final try's metadata (the echo's stamps, in its headers or
in a trailers-only answer) goes back in the proxy's response headers, then its status and message. Stops on its own
after --max-seconds.
"""
import argparse
import json
from concurrent import futures

import grpc

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--upstream", required=True)
parser.add_argument("--retries", type=int, required=True)
parser.add_argument("--retry-on", default="UNAVAILABLE")
parser.add_argument("--max-seconds", type=float, default=120)
args = parser.parse_args()

service_config = {"methodConfig": [{
    "name": [{}],  # every method
    "retryPolicy": {
        "maxAttempts": args.retries + 1,
        "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2,
        "retryableStatusCodes": args.retry_on.split(","),
    },
}]}
channel = grpc.insecure_channel(args.upstream, options=[
    ("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(service_config))])
# Headers the transport owns: never forwarded as metadata.
transport_headers = {"user-agent", "te", "content-type", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout"}


def forward(method):
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)

    def handle(request, context):
        metadata = [(k, v) for k, v in context.invocation_metadata() if k not in transport_headers]
        try:
            response, outcome = call.with_call(request, metadata=metadata, timeout=context.time_remaining())
        except grpc.RpcError as error:
            context.send_initial_metadata(tuple(error.initial_metadata() or ()) + tuple(error.trailing_metadata() or ()))
            context.abort(error.code(), error.details() or "")
        context.send_initial_metadata(tuple(outcome.initial_metadata() or ()))
        context.set_trailing_metadata(tuple(outcome.trailing_metadata() or ()))
        return response

    return handle


class AnyMethod(grpc.GenericRpcHandler):
    def service(self, handler_call_details):
        return grpc.unary_unary_rpc_method_handler(forward(handler_call_details.method))


server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
server.add_generic_rpc_handlers((AnyMethod(),))
server.add_insecure_port(f"127.0.0.1:{args.port}")
server.start()
server.wait_for_termination(timeout=args.max_seconds)
server.stop(0)
