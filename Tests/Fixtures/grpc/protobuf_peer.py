"""Python's protobuf (json_format) as the second implementation of meshprobe's descriptor-set encoding.

Usage: protobuf_peer.py SET CASES_FILE
CASES_FILE holds a JSON list of {"type", "json", "meshprobe_hex"?, "meshprobe_json"?}. For each case it prints one
JSON line: {"python_hex": bytes of json_format.Parse(json) serialized deterministically, "same_message": whether
meshprobe's bytes parse to an equal message, "same_from_json": whether meshprobe's JSON parses to an equal message,
"error": Python's refusal of the JSON, if any}.
"""
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

with open(sys.argv[1], "rb") as f:
    files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
pool = descriptor_pool.DescriptorPool()
for proto in files.file:
    pool.Add(proto)

with open(sys.argv[2]) as f:
    cases = json.load(f)
for case in cases:
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(case["type"]))
    out = {}
    try:
        expected = json_format.Parse(case["json"], cls(), descriptor_pool=pool)
    except Exception as e:  # noqa: BLE001 - the refusal is the answer
        print(json.dumps({"error": str(e)}))
        continue
    out["python_hex"] = expected.SerializePartialToString(deterministic=True).hex()
    if "meshprobe_hex" in case:
        out["same_message"] = cls.FromString(bytes.fromhex(case["meshprobe_hex"])) == expected
    if "meshprobe_json" in case:
        try:
            out["same_from_json"] = json_format.Parse(case["meshprobe_json"], cls(), descriptor_pool=pool) == expected
        except Exception as e:  # noqa: BLE001
            out["same_from_json"] = False
            out["error"] = str(e)
    print(json.dumps(out))
