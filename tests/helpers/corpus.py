"""The fixture corpus and the sample events of events/: loaders and the expected errors of invalid fixtures."""

from __future__ import annotations

import json
from typing import Any

from lineage_intake_tools.local.template import ROOT

EVENTS_DIR = ROOT / "events"
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = FIXTURES / "corpus"


def event_file(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def corpus_json(relative: str) -> Any:
    return json.loads((CORPUS / relative).read_text(encoding="utf-8"))


def concrete_corpus_events() -> list[tuple[str, dict[str, Any]]]:
    """Every concrete event of the fixture corpus, as (id, event); arrays are split."""
    out = []
    for line in (CORPUS / "INDEX.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        path, _group, kind = line.split("\t")[:3]
        if kind not in ("event", "event-array"):
            continue
        value = corpus_json(path)
        if isinstance(value, list):
            out += [(f"{path}[{i}]", ev) for i, ev in enumerate(value)]
        else:
            out.append((path, value))
    return out


_FLUENTD = "openlineage/events/proxy-fluentd/"
INVALID_FIXTURES = {
    _FLUENTD + "event_invalid_dataset_facet.json": "outputs[0].facets.ownership.owners[0].name",
    _FLUENTD + "event_invalid_input_dataset_facet.json": "inputs[0].inputFacets.dataQualityMetrics",
    _FLUENTD + "event_invalid_job_facet.json": "job.facets.ownership.owners[0].name",
    _FLUENTD + "event_invalid_output_dataset_facet.json": "outputs[0].outputFacets.outputStatistics.rowCount",
    _FLUENTD + "event_invalid_run_facet.json": "run.facets.parent.run.runId",
    _FLUENTD + "event_no_run_id.json": "run.runId",
}
