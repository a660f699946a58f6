"""Build the zlib preset dictionary of stored event bodies from OpenLineage's official JSON schemas.

The dictionary is OpenLineage's vocabulary in the form ingest stores bodies (compact JSON, sorted keys, see
``service.ingest.canonical_json``): each facet of the spec's facet schemas as ``"name":{"_producer":"",
"_schemaURL":"<$id>#/$defs/<Facet>","<property>":...}``, the core event's keys and eventType values, the
producer URL prefixes of the OpenLineage integrations, and common column types and SQL keywords. zlib finds
matches up to 32 KB back, nearer ones cheaper, so the most frequent strings come last.

Run ``python -m lineage_intake_tools.body_dictionary`` to print it; the layer's copy
(``lineage_intake/store/body_dictionary.py``) is this output for ``zlib-d2`` and must never change once items
are written with it (a unit test compares the two): a new vocabulary is a new ``bodyEnc``. See
docs/merge.md#storage-cost.
"""

from __future__ import annotations

import json
from typing import Any

from lineage_intake_tools.local.template import ROOT

#: The official schemas (OpenLineage, Apache-2.0: tests/fixtures/corpus/ATTRIBUTION.md).
SPEC = ROOT / "tests" / "fixtures" / "corpus" / "spec"

#: Producer URL prefixes of OpenLineage's integrations and clients (the spec has none: its examples name them).
PRODUCERS = (
    "https://github.com/MarquezProject/marquez/blob/main/",
    "https://github.com/apache/airflow/tree/providers-openlineage/",
    "https://github.com/OpenLineage/OpenLineage/blob/v1-0-0/client",
    "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/flink",
    "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/airflow",
    "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/dbt",
    "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/spark",
    "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python",
)

#: Column types and SQL that schema and sql facets carry, whatever the producer.
COMMON = (
    "SELECT  FROM  WHERE  AND  AS  ON  INNER JOIN  LEFT JOIN  GROUP BY  ORDER BY  INSERT INTO  CREATE TABLE  COUNT(*) ",
    '{"name":"id","type":"integer"},{"name":"","type":"string"},{"name":"","type":"timestamp"},'
    '{"description":"","name":"","type":"VARCHAR"},{"description":"","name":"","type":"TIMESTAMP"},'
    '{"description":"","name":"","type":"INTEGER"}',
    '"fields":{"":{"inputFields":[{"field":"","name":"","namespace":""}]}}',
)


def _properties(definition: dict[str, Any]) -> list[str]:
    props: dict[str, Any] = {}
    for part in definition.get("allOf", [definition]):
        props.update(part.get("properties", {}))
    return sorted(props)


def facet_entries() -> list[str]:
    """One entry per facet of the facet schemas, in file name order."""
    out = []
    for path in sorted((SPEC / "facets").glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        for key, ref in schema.get("properties", {}).items():
            for one in ref.get("anyOf", [ref]):
                name = one["$ref"].rsplit("/", 1)[-1]
                fields = "".join(f'"{p}":' for p in _properties(schema["$defs"][name]))
                out.append(f'"{key}":{{"_producer":"","_schemaURL":"{schema["$id"]}#/$defs/{name}",{fields}}}')
    return out


def core_entries() -> list[str]:
    """The event's own keys and eventType values, from OpenLineage.json."""
    spec = json.loads((SPEC / "OpenLineage.json").read_text(encoding="utf-8"))
    url = spec["$id"]
    run_event = spec["$defs"]["RunEvent"]["allOf"][1]["properties"]
    types = "".join(f'"eventType":"{t}",' for t in run_event["eventType"]["enum"])
    return [
        *(f'"schemaURL":"{url}#/$defs/{kind}"}}' for kind in ("DatasetEvent", "JobEvent")),
        '"dataset":{"facets":{},"name":"","namespace":""},',
        '"inputs":[{"facets":{},"inputFacets":{},"name":"","namespace":""}],'
        '"outputs":[{"facets":{},"name":"","namespace":"","outputFacets":{}}],',
        types,
        '"eventTime":"2024-01-01T00:00:00.000Z",'
        '"job":{"facets":{},"name":"","namespace":""},"producer":"","run":{"facets":{},"runId":""},'
        f'"schemaURL":"{url}#/$defs/RunEvent"}}',
    ]


def build() -> bytes:
    producers = [f'"_producer":"{p}","_schemaURL":"https://openlineage.io/spec/facets/' for p in PRODUCERS]
    producers += [f'"producer":"{p}",' for p in PRODUCERS]
    return "".join([*COMMON, *facet_entries(), *producers, *core_entries()]).encode("utf-8")


if __name__ == "__main__":
    text = build()
    print(f"ZDICT = (  # {len(text)} bytes")
    for start in range(0, len(text), 100):
        print(f"    {text[start : start + 100]!r}")
    print(")")
