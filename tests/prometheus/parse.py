"""Parses a Prometheus text exposition from stdin with the prometheus_client parser (the
Prometheus project's Python client) and prints what it understood as JSON, for
tests/stats_export.rs to compare with the library's own figures. A parse error exits non-zero.

Values are printed with repr() (so NaN and infinities survive JSON)."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name,
        "type": family.type,
        "documentation": family.documentation,
        "samples": [
            {"name": s.name, "labels": dict(s.labels), "value": repr(float(s.value))}
            for s in family.samples
        ],
    })
json.dump(families, sys.stdout)
