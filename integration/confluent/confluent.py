#!/usr/bin/env python3
"""Confluent's own serializers, as an independent client of eddy's wire format.

The integration tests (integration/schema_test.go) produce records with
Confluent's Avro, Protobuf and JSON Schema serializers and read eddy's
outputs with its deserializers, against the real registry and Kafka of
`make services`, which installs this script's Python in
$EDDY_SERVICES_DIR/py (confluent-kafka 2.16.1 with fastavro, protobuf and
grpcio-tools):

  $EDDY_SERVICES_DIR/py/bin/python integration/confluent/confluent.py produce \
      --brokers 127.0.0.1:9092 --registry http://127.0.0.1:8081/apis/ccompat/v7 \
      --topic orders --format avro --schema order.avsc --input orders.jsonl
  ... consume --topic out --format avro --count 10 [--proto file.proto --message M]

produce reads JSON lines {"key": "...", "value": {...}} and produces each
value serialized by Confluent's serializer (subject <topic>-value, the
schema registered automatically). For Avro, a string or number given for a
decimal becomes a Decimal and an ISO 8601 string for a timestamp-millis a
datetime; for Protobuf the .proto is compiled with grpcio-tools' protoc
and the value filled with json_format.ParseDict (proto field names).

consume reads --count records from the topic's start, read_committed,
deserialized by Confluent's deserializer (the schema fetched by the ID the
record carries), and prints each as a JSON line {"key", "value",
"schema_id"}: datetimes as ISO 8601 strings, Decimals as strings, bytes
as base64, Protobuf messages as json_format.MessageToDict with proto field
names. Both exit non-zero on any error or on a timeout.
"""
import argparse
import base64
import datetime
import decimal
import importlib
import json
import os
import sys
import tempfile
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.serialization import MessageField, SerializationContext


def proto_class(path, message):
    """Compiles the .proto at path and returns its message class."""
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="eddy-proto-")
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    src_dir = os.path.dirname(os.path.abspath(path))
    rc = protoc.main(["protoc", "-I" + src_dir, "-I" + include, "--python_out=" + out, os.path.abspath(path)])
    if rc != 0:
        sys.exit("protoc failed on %s" % path)
    sys.path.insert(0, out)
    mod = importlib.import_module(os.path.splitext(os.path.basename(path))[0] + "_pb2")
    if message:
        return getattr(mod, message.split(".")[-1])
    return getattr(mod, mod.DESCRIPTOR.message_types_by_name and list(mod.DESCRIPTOR.message_types_by_name)[0])


def avro_value(schema, v):
    """Turns a JSON value into what fastavro writes for schema."""
    if isinstance(schema, list):
        if v is None:
            return None
        for branch in schema:
            if branch != "null":
                return avro_value(branch, v)
    if isinstance(schema, dict):
        t, logical = schema.get("type"), schema.get("logicalType")
        if t == "record":
            return {f["name"]: avro_value(f["type"], v[f["name"]]) for f in schema["fields"] if f["name"] in v}
        if t == "array":
            return [avro_value(schema["items"], x) for x in v]
        if t == "map":
            return {k: avro_value(schema["values"], x) for k, x in v.items()}
        if logical == "decimal":
            return decimal.Decimal(str(v)).quantize(decimal.Decimal(1).scaleb(-schema.get("scale", 0)))
        if logical in ("timestamp-millis", "timestamp-micros") and isinstance(v, str):
            return datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
        if isinstance(t, (dict, list)):
            return avro_value(t, v)
    return v


def plain(v):
    """Makes a deserialized value JSON-encodable."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return v


def produce(a, sr):
    schema = open(a.schema).read()
    if a.format == "avro":
        from confluent_kafka.schema_registry.avro import AvroSerializer

        parsed = json.loads(schema)
        ser = AvroSerializer(sr, schema, to_dict=lambda obj, ctx: avro_value(parsed, obj))
        make = lambda v: v
    elif a.format == "protobuf":
        from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
        from google.protobuf import json_format

        cls = proto_class(a.schema, a.message)
        ser = ProtobufSerializer(cls, sr, {"use.deprecated.format": False})
        make = lambda v: json_format.ParseDict(v, cls())
    else:
        from confluent_kafka.schema_registry.json_schema import JSONSerializer

        ser = JSONSerializer(schema, sr)
        make = lambda v: v
    p = Producer({"bootstrap.servers": a.brokers, "enable.idempotence": True})
    errors = []

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            print(json.dumps({"partition": msg.partition(), "offset": msg.offset()}))

    ctx = SerializationContext(a.topic, MessageField.VALUE)
    for line in open(a.input):
        if not line.strip():
            continue
        rec = json.loads(line)
        key = rec.get("key")
        p.produce(a.topic, key=key.encode() if key is not None else None, value=ser(make(rec["value"]), ctx), on_delivery=done)
        p.poll(0)
    if p.flush(30) != 0:
        sys.exit("not every record was delivered")
    if errors:
        sys.exit("delivery failed: %s" % errors[0])


def consume(a, sr):
    if a.format == "avro":
        from confluent_kafka.schema_registry.avro import AvroDeserializer

        des = AvroDeserializer(sr)
        out = plain
    elif a.format == "protobuf":
        from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
        from google.protobuf import json_format

        cls = proto_class(a.proto, a.message)
        des = ProtobufDeserializer(cls, {"use.deprecated.format": False})
        out = lambda m: json_format.MessageToDict(m, preserving_proto_field_name=True)
    else:
        from confluent_kafka.schema_registry.json_schema import JSONDeserializer

        des = JSONDeserializer(None, schema_registry_client=sr)
        out = plain
    c = Consumer({"bootstrap.servers": a.brokers, "group.id": "confluent-py-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed", "enable.auto.commit": False})
    c.subscribe([a.topic])
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=a.timeout)
    n = 0
    ctx = SerializationContext(a.topic, MessageField.VALUE)
    try:
        while n < a.count:
            if datetime.datetime.now() > deadline:
                sys.exit("timed out: %d of %d records read from %s" % (n, a.count, a.topic))
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                sys.exit("consume: %s" % m.error())
            v = m.value()
            schema_id = int.from_bytes(v[1:5], "big") if v and len(v) >= 5 else None
            print(json.dumps({"key": m.key().decode() if m.key() is not None else None,
                              "value": out(des(v, ctx)), "schema_id": schema_id}, sort_keys=True))
            n += 1
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["produce", "consume"])
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--registry", default="http://127.0.0.1:8081/apis/ccompat/v7")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--format", choices=["avro", "protobuf", "json_schema"], required=True)
    ap.add_argument("--schema", help="produce: the schema file")
    ap.add_argument("--input", help="produce: JSON lines of {key, value}")
    ap.add_argument("--proto", help="consume --format protobuf: the .proto of the records")
    ap.add_argument("--message", help="protobuf: the message name (default the file's first)")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    sr = SchemaRegistryClient({"url": a.registry})
    if a.command == "produce":
        produce(a, sr)
    else:
        consume(a, sr)


if __name__ == "__main__":
    main()
