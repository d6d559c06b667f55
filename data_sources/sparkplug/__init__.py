"""Sparkplug B wire format: the specification's protobuf schema (sparkplug_b.proto, compiled by `make proto`)."""
