"""A gRPC server on grpcio (gRPC's C core) with the server reflection service (grpcio-reflection), for meshprobe's
tests: it serves the services of a descriptor set, answering every unary call with the request's bytes, and
describes them by reflection under the names asked for.

    python3 reflection_server.py --port P --protoset FILE [--reflection v1,v1alpha | v1alpha | v1 | none]
                                 [--one-file] [--withhold FILE.proto] [--garbage] [--require-metadata KEY=VALUE]
                                 [--expect-json JSON --expect-type TYPE] [--tls CERT KEY CA] [--max-seconds S]

grpcio-reflection serves only grpc.reflection.v1alpha; its servicer is registered under v1 too (the two versions'
messages are the same on the wire). It answers file_containing_symbol with the file and all it imports; --one-file
sends the file alone (as other servers do, so the client asks for the imports by file_by_filename). --withhold
leaves a file out of every answer (file_by_filename answers NOT_FOUND). --garbage answers the v1 stream with bytes
that are not a ServerReflectionResponse. --require-metadata fails reflection calls without that metadata
(PERMISSION_DENIED). --expect-json: a call whose request is not the JSON encoded as TYPE (by Python's protobuf) is
answered INVALID_ARGUMENT with the bytes it got. Binds 127.0.0.1:P (mutual TLS with --tls); stops after --max-seconds.
"""
import argparse
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.reflection import ReflectionServicer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--protoset", required=True)
parser.add_argument("--reflection", default="v1,v1alpha")
parser.add_argument("--one-file", action="store_true")
parser.add_argument("--withhold")
parser.add_argument("--garbage", action="store_true")
parser.add_argument("--require-metadata")
parser.add_argument("--expect-json")
parser.add_argument("--expect-type")
parser.add_argument("--tls", nargs=3, metavar=("CERT", "KEY", "CA"))
parser.add_argument("--max-seconds", type=float, default=120)
args = parser.parse_args()

files = descriptor_pb2.FileDescriptorSet.FromString(open(args.protoset, "rb").read())
pool = descriptor_pool.DescriptorPool()
for f in files.file:  # protoc --include_imports writes a file's imports before it
    pool.Add(f)
services = [f"{f.package}.{s.name}" if f.package else s.name for f in files.file for s in f.service]
versions = [v for v in args.reflection.split(",") if v and v != "none"]

expected = None
if args.expect_json is not None:
    message_class = message_factory.GetMessageClass(pool.FindMessageTypeByName(args.expect_type))
    expected = json_format.Parse(args.expect_json, message_class()).SerializeToString()


class Servicer(ReflectionServicer):
    def ServerReflectionInfo(self, request_iterator, context):
        if args.require_metadata:
            key, value = args.require_metadata.split("=", 1)
            if (key, value) not in tuple(context.invocation_metadata()):
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"reflection needs the metadata {key}: {value}")
        for response in super().ServerReflectionInfo(request_iterator, context):
            if response.HasField("file_descriptor_response"):
                protos = list(response.file_descriptor_response.file_descriptor_proto)
                if args.withhold:
                    protos = [p for p in protos if descriptor_pb2.FileDescriptorProto.FromString(p).name != args.withhold]
                    if not protos:
                        response = reflection_pb2.ServerReflectionResponse(
                            error_response=reflection_pb2.ErrorResponse(error_code=5, error_message=f"{args.withhold} withheld"),
                            original_request=response.original_request)
                        yield response
                        continue
                if args.one_file:
                    protos = protos[:1]
                del response.file_descriptor_response.file_descriptor_proto[:]
                response.file_descriptor_response.file_descriptor_proto.extend(protos)
            yield response


servicer = Servicer(services + [f"grpc.reflection.{v}.ServerReflection" for v in versions], pool=pool)


def garbage(request_iterator, context):
    for _ in request_iterator:
        yield b"\x22\xff\xff\xff\x0f\x01"  # field 4, length-delimited, a length far past the end


def reflection_handler(version):
    if args.garbage and version == "v1":
        method = grpc.stream_stream_rpc_method_handler(garbage, request_deserializer=None, response_serializer=None)
    else:
        method = grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    return grpc.method_handlers_generic_handler(f"grpc.reflection.{version}.ServerReflection", {"ServerReflectionInfo": method})


def echo(request, context):
    if expected is not None and request != expected:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unexpected request " + request.hex() + ", expected " + expected.hex())
    return request


class AnyMethod(grpc.GenericRpcHandler):
    def service(self, handler_call_details):
        if handler_call_details.method.startswith("/grpc.reflection."):
            return None
        return grpc.unary_unary_rpc_method_handler(echo)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers(tuple(reflection_handler(v) for v in versions) + (AnyMethod(),))
if args.tls:
    cert, key, ca = (open(p, "rb").read() for p in args.tls)
    credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
    server.add_secure_port(f"127.0.0.1:{args.port}", credentials)
else:
    server.add_insecure_port(f"127.0.0.1:{args.port}")
server.start()
server.wait_for_termination(timeout=args.max_seconds)
server.stop(0)
