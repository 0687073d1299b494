"""A gRPC server on grpcio (gRPC's C core) for meshprobe's tests: answers every unary method with the request's
bytes, stamped with the workload identity meshprobe reads (x-meshprobe-workload, x-meshprobe-version as initial
metadata), and fails a share of calls with a given status.

    python3 stamp_server.py --port P --workload W --version V [--fail-every N --fail-status NAME]
                            [--tls CERT KEY CA] [--max-seconds S]

Binds 127.0.0.1:P; with --tls, mutual TLS (the client's certificate checked against CA); serves the standard health service too (grpcio-health-
checking: '' and 'meshprobe.test' SERVING). Stops on its own after --max-seconds.
"""
import argparse
import itertools
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--workload", default="grpc-server")
parser.add_argument("--version", default="v1")
parser.add_argument("--fail-every", type=int, default=0)
parser.add_argument("--fail-status", default="UNAVAILABLE")
parser.add_argument("--fail-message", default="unavailable: 50% of calls fail")
parser.add_argument("--tls", nargs=3, metavar=("CERT", "KEY", "CA"))
parser.add_argument("--max-seconds", type=float, default=120)
parser.add_argument("--sleep-ms", type=int, default=0, help="sleep this long before answering (after the stamps)")
parser.add_argument("--unstamped", action="store_true", help="fail calls (--fail-every) before sending the stamps")
parser.add_argument("--expect-request-hex", help="answer INVALID_ARGUMENT to a request whose bytes are not these")
args = parser.parse_args()

counter = itertools.count(1)
lock = threading.Lock()


def handle(request, context):
    with lock:
        n = next(counter)
    if args.unstamped and args.fail_every and n % args.fail_every == 0:
        context.abort(getattr(grpc.StatusCode, args.fail_status), args.fail_message)
    context.send_initial_metadata((("x-meshprobe-workload", args.workload), ("x-meshprobe-version", args.version)))
    if args.sleep_ms:
        time.sleep(args.sleep_ms / 1000)
    if args.expect_request_hex is not None and request.hex() != args.expect_request_hex:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unexpected request " + request.hex())
    if args.fail_every and n % args.fail_every == 0:
        context.abort(getattr(grpc.StatusCode, args.fail_status), args.fail_message)
    return request


class AnyMethod(grpc.GenericRpcHandler):
    def service(self, handler_call_details):
        if handler_call_details.method.startswith("/grpc.health.v1.Health/"):
            return None
        return grpc.unary_unary_rpc_method_handler(handle)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
health_servicer = health.HealthServicer()
health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
health_servicer.set("meshprobe.test", health_pb2.HealthCheckResponse.SERVING)
health_servicer.set("meshprobe.draining", health_pb2.HealthCheckResponse.NOT_SERVING)
health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
server.add_generic_rpc_handlers((AnyMethod(),))
if args.tls:
    cert, key, ca = (open(p, "rb").read() for p in args.tls)
    credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
    server.add_secure_port(f"127.0.0.1:{args.port}", credentials)
else:
    server.add_insecure_port(f"127.0.0.1:{args.port}")
server.start()
server.wait_for_termination(timeout=args.max_seconds)
server.stop(0)
