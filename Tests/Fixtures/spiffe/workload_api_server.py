#!/usr/bin/env python3
"""A SPIFFE Workload API server (FetchX509SVID, FetchX509Bundles) on a Unix socket, built with grpcio from the SPIFFE
workload.proto, issuing X.509-SVIDs with the lab CA.

It stands in for the SPIRE agent, whose binary cannot be installed here. As the agent does, it refuses a call without
the `workload.spiffe.io: true` header (InvalidArgument), answers PermissionDenied when it has no identity for the
caller (--mode permission-denied; --mode invalid-argument refuses every call), offers every --spiffe-id it is given (the first is the default SVID), and sends a
new X509SVIDResponse on the open stream at every rotation (--rotate-every), each SVID freshly issued with a
--lifetime validity. Every response sent is logged to --log, one line each: the SPIFFE IDs and the leaf's serial.
"""
import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def generated_modules(proto):
    out = tempfile.mkdtemp(prefix="workload-api-stubs-")
    include = os.path.dirname(proto)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                    os.path.basename(proto)], check=True)
    sys.path.insert(0, out)
    import workload_pb2
    import workload_pb2_grpc
    return workload_pb2, workload_pb2_grpc


class Issuer:
    def __init__(self, ca_cert, ca_key, lifetime):
        with open(ca_cert, "rb") as f:
            self.ca = x509.load_pem_x509_certificate(f.read())
        with open(ca_key, "rb") as f:
            self.ca_key = serialization.load_pem_private_key(f.read(), password=None)
        self.lifetime = lifetime
        self.bundle = self.ca.public_bytes(serialization.Encoding.DER)

    def issue(self, spiffe_id):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        serial = x509.random_serial_number()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SPIRE")]))
                .issuer_name(self.ca.subject)
                .public_key(key.public_key())
                .serial_number(serial)
                .not_valid_before(now - datetime.timedelta(seconds=60))
                .not_valid_after(now + datetime.timedelta(seconds=self.lifetime))
                .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                             data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(self.ca_key, hashes.SHA256()))
        der_key = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return cert.public_bytes(serialization.Encoding.DER), der_key, serial


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--proto", required=True)
    parser.add_argument("--ca-cert", required=True)
    parser.add_argument("--ca-key", required=True)
    parser.add_argument("--trust-domain", required=True)
    parser.add_argument("--spiffe-id", action="append", default=[])
    parser.add_argument("--federated", action="append", default=[], help="TRUST_DOMAIN=PEM_FILE")
    parser.add_argument("--mode", choices=["serve", "permission-denied", "invalid-argument"], default="serve")
    parser.add_argument("--rotate-every", type=float, default=0)
    parser.add_argument("--lifetime", type=float, default=3600)
    parser.add_argument("--log", default=None)
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args()

    pb2, pb2_grpc = generated_modules(args.proto)
    issuer = Issuer(args.ca_cert, args.ca_key, args.lifetime)
    federated = {}
    for spec in args.federated:
        domain, path = spec.split("=", 1)
        with open(path, "rb") as f:
            federated[domain] = b"".join(c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(f.read()))
    deadline = time.monotonic() + args.max_seconds
    log_lock = threading.Lock()

    def log(line):
        if args.log:
            with log_lock, open(args.log, "a") as f:
                f.write(line + "\n")

    def response():
        svids = []
        serials = []
        for spiffe_id in args.spiffe_id:
            cert, key, serial = issuer.issue(spiffe_id)
            serials.append(f"{spiffe_id} {serial:x}")
            svids.append(pb2.X509SVID(spiffe_id=spiffe_id, x509_svid=cert, x509_svid_key=key, bundle=issuer.bundle))
        log("update " + " ".join(serials))
        return pb2.X509SVIDResponse(svids=svids, federated_bundles=federated)

    def check(context):
        metadata = dict(context.invocation_metadata())
        if metadata.get("workload.spiffe.io") != "true":
            log("refused: no workload.spiffe.io header")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")
        if args.mode == "invalid-argument":
            log("refused: invalid argument")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not valid")
        if args.mode == "permission-denied":
            log("refused: no identity")
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "no identity issued")

    class WorkloadAPI(pb2_grpc.SpiffeWorkloadAPIServicer):
        def FetchX509SVID(self, request, context):
            check(context)
            yield response()
            last = time.monotonic()
            while context.is_active() and time.monotonic() < deadline:
                time.sleep(0.05)
                if args.rotate_every > 0 and time.monotonic() - last >= args.rotate_every:
                    last = time.monotonic()
                    yield response()

        def FetchX509Bundles(self, request, context):
            check(context)
            bundles = {"spiffe://" + args.trust_domain: issuer.bundle}
            bundles.update(federated)
            yield pb2.X509BundlesResponse(bundles=bundles)
            while context.is_active() and time.monotonic() < deadline:
                time.sleep(0.05)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb2_grpc.add_SpiffeWorkloadAPIServicer_to_server(WorkloadAPI(), server)
    server.add_insecure_port("unix:" + args.socket)
    server.start()
    print("listening", flush=True)
    while time.monotonic() < deadline:
        time.sleep(0.2)
    server.stop(0)


if __name__ == "__main__":
    main()
