"""The published event schema (schema/event-v1.schema.json) against the
decoder: every good and bad fixture goes through a real JSON Schema
validator (Python's jsonschema, Draft 2020-12) and through `chiprisk
validate`; they must agree on accept or reject, but for the few cases JSON
Schema cannot express, listed below."""

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CHIPRISK_BIN", str(ROOT / "target" / "debug" / "chiprisk"))
SCHEMA = json.loads((ROOT / "schema" / "event-v1.schema.json").read_text())

# What JSON Schema cannot state, by the fixture's name in tests/data/bad-events.json.
KNOWN_DIFFERENCES = {
    "duplicate known key": "JSON Schema sees the parsed object; a duplicate key is gone by then",
    "duplicate unknown key": "the same",
    "message larger than 64 KiB": "a byte limit on the message (limits.max_event_bytes), not on any value",
    "deep nesting in an unknown field": "the JSON parser's nesting limit (128), not a property of the value",
    "65 unknown fields": "a count of the fields the schema does not name: maxProperties would count the named ones too",
    "5000 unknown fields": "the same",
    "occurred_at beyond 2262": "the span of a 64-bit nanosecond clock (1677-09-21..2262-04-11): a pattern does not bound the year",
    "occurred_at in the year 3000": "the same",
}


def good_lines():
    lines = []
    for name in ["history.jsonl", "demo-scenario.jsonl", "worked-example.jsonl"]:
        lines += [l for l in (ROOT / "data" / name).read_bytes().splitlines() if l.strip()]
    generate = ROOT / "target" / "debug" / "examples" / "generate"
    if generate.exists():
        lines += subprocess.run([str(generate), "300", "9"], check=True, capture_output=True).stdout.splitlines()
    return lines


def bad_cases():
    doc = json.loads((ROOT / "tests" / "data" / "bad-events.json").read_text())
    expand = lambda t: re.sub(r"<<(\d+)\*(.*?)>>", lambda m: m.group(2) * int(m.group(1)), t)  # noqa: E731
    return [(c["name"], bytes.fromhex(c["hex"]) if "hex" in c else expand(c["json"]).encode()) for c in doc["cases"]]


def schema_accepts(line):
    """Parsed as JSON (strictly: no NaN or Infinity) and valid under the schema."""
    def refuse(token):
        raise ValueError(token)
    try:
        event = json.loads(line.decode("utf-8"), parse_constant=refuse)
    except (UnicodeDecodeError, ValueError):
        return False
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(event)


def decoder_accepts(lines, tmp_path):
    """Per line, whether `chiprisk validate` accepts it."""
    path = tmp_path / "cases.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = subprocess.run([BIN, "validate", str(path)], capture_output=True)
    rejected = {int(m.group(1)) for m in re.finditer(rb"^" + re.escape(str(path).encode()) + rb":(\d+):", out.stderr, re.M)}
    return [i + 1 not in rejected for i in range(len(lines))]


def test_the_schema_itself_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_schema_and_decoder_agree_on_every_fixture(tmp_path):
    cases = [(f"good {i}", l) for i, l in enumerate(good_lines())] + bad_cases()
    one_line = [(name, line) for name, line in cases if b"\n" not in line and b"\r" not in line]
    assert len(one_line) >= len(cases) - 3, "fixtures are one line each"
    verdicts = decoder_accepts([line for _, line in one_line], tmp_path)
    disagree = {}
    for (name, line), decoder in zip(one_line, verdicts):
        schema = schema_accepts(line)
        if schema != decoder:
            disagree[name] = (schema, decoder)
    assert set(disagree) == set(KNOWN_DIFFERENCES), disagree
    for name, (schema, decoder) in disagree.items():
        assert schema and not decoder, f"{name}: the schema refuses what the decoder accepts"
    assert sum(verdicts) >= 300, "the good fixtures are accepted"
