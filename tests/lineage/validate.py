"""Validate sluice's OpenLineage events against the official OpenLineage Python client.

The official JSON schema (OpenLineage.json) ships in none of the package registries this
project builds from, so the check is made against the classes of `openlineage-python`
(pinned in tests/requirements.txt) in `openlineage.client.generated`, which the
OpenLineage project generates from that schema and its facet schemas. Each event is
structured *strictly* into `openlineage.client.event_v2.RunEvent` and the facet classes:

- every key must be a field of the class (a misspelled or unknown key fails),
- every required field must be present, every value of its declared type (str, int,
  bool, enum, list, dict, nested class; no coercion),
- the class's own validators run (runId is a UUID, eventTime an ISO-8601 date-time),
- `schemaURL` / each facet's `_schemaURL` must be the one the client's class declares
  (so a facet that claims another version fails), and `eventTime` must carry a timezone.

sluice's own run facet (`sluice`) is checked with `jsonschema` against
host/schemas/SluiceRunFacet.json. When `OPENLINEAGE_SPEC` names a copy of the official
OpenLineage.json, every event is also validated against it with `jsonschema`.

Usage:
    validate.py EVENTS.ndjson            validate every line; prints {"valid": N}
    validate.py --self-test EVENTS.ndjson  also check that broken copies of the events
                                         (misspelled field, bad enum, ...) are rejected
Exit 0 when valid, 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import copy
import datetime
import enum
import json
import os
import sys
import types
import typing
import uuid
from pathlib import Path
from urllib.parse import urlparse

import attr
import jsonschema
from openlineage.client.event_v2 import RunEvent
from openlineage.client.generated import base
from openlineage.client.generated.column_lineage_dataset import ColumnLineageDatasetFacet
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.job_type_job import JobTypeJobFacet
from openlineage.client.generated.nominal_time_run import NominalTimeRunFacet
from openlineage.client.generated.output_statistics_output_dataset import (
    OutputStatisticsOutputDatasetFacet,
)
from openlineage.client.generated.processing_engine_run import ProcessingEngineRunFacet
from openlineage.client.generated.schema_dataset import SchemaDatasetFacet

ROOT = Path(__file__).resolve().parents[2]
SLUICE_FACET_SCHEMA = json.loads((ROOT / "host/schemas/SluiceRunFacet.json").read_text())

# The facets sluice emits, by the kind of facet map and key. Any other key is an error:
# sluice emits no facet it does not know.
FACETS = {
    (base.RunFacet, "errorMessage"): ErrorMessageRunFacet,
    (base.RunFacet, "processing_engine"): ProcessingEngineRunFacet,
    (base.RunFacet, "nominalTime"): NominalTimeRunFacet,
    (base.JobFacet, "jobType"): JobTypeJobFacet,
    (base.DatasetFacet, "schema"): SchemaDatasetFacet,
    (base.DatasetFacet, "columnLineage"): ColumnLineageDatasetFacet,
    (base.OutputDatasetFacet, "outputStatistics"): OutputStatisticsOutputDatasetFacet,
}


class Invalid(Exception):
    pass


def structure(value, hint, path):
    """Structure `value` as type `hint` without coercion; return the built object."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise Invalid(f"{path}: null is not allowed")
        options = [a for a in args if a is not type(None)]
        errors = []
        for a in options:
            try:
                return structure(value, a, path)
            except Invalid as e:
                errors.append(str(e))
        raise Invalid("; ".join(errors))
    if origin is list:
        if not isinstance(value, list):
            raise Invalid(f"{path}: expected a list, got {type(value).__name__}")
        return [structure(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise Invalid(f"{path}: expected an object, got {type(value).__name__}")
        kind = args[1]
        if isinstance(kind, type) and issubclass(kind, base.BaseFacet):
            return {k: facet(v, kind, k, f"{path}.{k}") for k, v in value.items()}
        return {k: structure(v, kind, f"{path}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            allowed = [m.value for m in hint]
            raise Invalid(f"{path}: {value!r} is not one of {allowed}") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise Invalid(f"{path}: expected a boolean, got {value!r}")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise Invalid(f"{path}: expected a string, got {value!r}")
        return value
    if attr.has(hint):
        return instance(value, hint, path)
    raise Invalid(f"{path}: no rule for type {hint!r}")


def instance(value, cls, path):
    """Build attrs class `cls` from a JSON object: exact keys, required fields, validators."""
    if not isinstance(value, dict):
        raise Invalid(f"{path}: expected an object ({cls.__name__}), got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attr.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise Invalid(f"{path}: unknown field(s) {unknown} for {cls.__name__}; allowed: {sorted(fields)}")
    # The JSON schema requires these although the client's classes default them (the
    # client fills them in when it builds an event itself).
    required = set()
    if issubclass(cls, base.BaseFacet):
        required = {"_producer", "_schemaURL"}
    elif issubclass(cls, base.BaseEvent):
        required = {"producer", "schemaURL"}
    for name in sorted(required - set(value)):
        raise Invalid(f"{path}: required field `{name}` of {cls.__name__} is missing")
    for name in ("producer", "_producer"):
        if name in value and not (isinstance(value[name], str) and urlparse(value[name]).scheme):
            raise Invalid(f"{path}.{name}: {value[name]!r} is not a URI")
    kwargs = {}
    for name, f in fields.items():
        if not f.init:
            continue
        if name not in value:
            if f.default is attr.NOTHING:
                raise Invalid(f"{path}: required field `{name}` of {cls.__name__} is missing")
            continue
        kwargs[f.alias] = structure(value[name], hints[name], f"{path}.{name}")
    try:
        obj = cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise Invalid(f"{path}: {cls.__name__} rejects it: {e}") from None
    # Fields the client computes (schemaURL, _schemaURL) must equal what the event says.
    for name, f in fields.items():
        if not f.init:
            expected = getattr(obj, name)
            if value.get(name) != expected:
                raise Invalid(f"{path}.{name}: {value.get(name)!r}, expected {expected!r}")
    return obj


def facet(value, kind, key, path):
    if kind is base.RunFacet and key == "sluice":
        if not isinstance(value, dict):
            raise Invalid(f"{path}: expected an object")
        schema = {"$ref": "#/$defs/SluiceRunFacet", "$defs": SLUICE_FACET_SCHEMA["$defs"]}
        try:
            jsonschema.validate(value, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        except jsonschema.ValidationError as e:
            raise Invalid(f"{path}: {e.message} (at {list(e.absolute_path)})") from None
        url = value["_schemaURL"]
        if not url.endswith("/host/schemas/SluiceRunFacet.json#/$defs/SluiceRunFacet"):
            raise Invalid(f"{path}._schemaURL: {url!r} is not the SluiceRunFacet schema")
        return value
    cls = FACETS.get((kind, key))
    if cls is None:
        raise Invalid(f"{path}: unexpected {kind.__name__} `{key}`")
    return instance(value, cls, path)


def validate(event, spec=None):
    """Raise Invalid unless `event` is a valid sluice RunEvent."""
    for k in ("eventType", "eventTime", "run", "job", "producer", "schemaURL"):
        if k not in event:
            raise Invalid(f"event: `{k}` is missing")
    obj = instance(event, RunEvent, "event")
    when = datetime.datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise Invalid(f"event.eventTime: {event['eventTime']!r} has no timezone")
    if str(uuid.UUID(event["run"]["runId"])) != event["run"]["runId"]:
        raise Invalid("event.run.runId: not a canonical lowercase UUID")
    if spec is not None:
        try:
            jsonschema.validate(event, spec, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        except jsonschema.ValidationError as e:
            raise Invalid(f"OpenLineage.json: {e.message} (at {list(e.absolute_path)})") from None
    return obj


def broken_copies(event):
    """Copies of a valid event with one mistake each, every one of which must be rejected."""
    out = []

    def mutate(name, fn):
        # A mistake in a part this event does not have (no schema facet before the chain
        # opened, no statistics before COMPLETE) is skipped.
        e = copy.deepcopy(event)
        try:
            applied = fn(e) is not False
        except (KeyError, IndexError):
            applied = False
        if applied:
            out.append((name, e))

    def rename(d, old, new):
        if old not in d:
            return False
        d[new] = d.pop(old)

    mutate("misspelled eventTime", lambda e: rename(e, "eventTime", "eventTIme"))
    mutate("unknown top-level field", lambda e: e.update(extra=1))
    mutate("eventType not in the enum", lambda e: e.update(eventType="DONE"))
    mutate("runId not a UUID", lambda e: e["run"].update(runId="run-1"))
    mutate("eventTime not a date-time", lambda e: e.update(eventTime="yesterday"))
    mutate("job without a name", lambda e: e["job"].pop("name"))
    mutate("wrong schemaURL", lambda e: e.update(schemaURL=e["schemaURL"].replace("2-0-2", "1-0-0")))
    mutate("misspelled schema facet field", lambda e: rename(e["outputs"][0]["facets"]["schema"]["fields"][0], "name", "nmae"))
    mutate("schema facet of another version", lambda e: e["outputs"][0]["facets"]["schema"].update(
        _schemaURL=e["outputs"][0]["facets"]["schema"]["_schemaURL"].replace("1-2-0", "1-0-0")))
    mutate("facet without _producer", lambda e: e["job"]["facets"]["jobType"].pop("_producer"))
    mutate("integer as a string", lambda e: e["outputs"][0]["facets"]["schema"]["fields"][0].update(ordinal_position="1"))
    mutate("unknown sluice facet field", lambda e: e["run"]["facets"]["sluice"].update(actionkey="x"))
    mutate("unknown facet", lambda e: e["run"]["facets"].update(mystery={"_producer": "x", "_schemaURL": "y"}))
    if "outputStatistics" in event["outputs"][0].get("outputFacets", {}):
        mutate("misspelled rowCount", lambda e: rename(e["outputs"][0]["outputFacets"]["outputStatistics"], "rowCount", "rowcount"))
    return out


def main(argv):
    self_test = "--self-test" in argv
    files = [a for a in argv if a != "--self-test"]
    if len(files) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    spec = None
    if os.environ.get("OPENLINEAGE_SPEC"):
        spec = json.loads(Path(os.environ["OPENLINEAGE_SPEC"]).read_text())
    lines = [l for l in Path(files[0]).read_text().splitlines() if l.strip()]
    if not lines:
        print(f"{files[0]}: no events", file=sys.stderr)
        return 1
    events = []
    for i, line in enumerate(lines, 1):
        event = json.loads(line)
        try:
            validate(event, spec)
        except Invalid as e:
            print(f"{files[0]}:{i}: invalid OpenLineage event: {e}", file=sys.stderr)
            return 1
        events.append(event)
    rejected = 0
    if self_test:
        for event in events:
            for name, broken in broken_copies(event):
                try:
                    validate(broken, spec)
                except (Invalid, KeyError, ValueError):
                    rejected += 1
                    continue
                print(f"self-test: the validator accepted an event with a {name}", file=sys.stderr)
                return 1
    print(json.dumps({"valid": len(events), "rejected_broken_copies": rejected,
                      "openlineage_spec": bool(spec)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
