"""``make demo``: post real OpenLineage events to a running ``make run`` with the official Python client, then
show what the pipeline made of them with the ``lineage-intake`` CLI.

The events are bundled with the repository (``tests/fixtures/corpus``, see its ``SOURCES.md``): the 13 runs of
Marquez's ``food_delivery`` seed (START and COMPLETE each, a small warehouse lineage graph), the START and
COMPLETE of the OpenLineage proxy's docker test, and a JobEvent and a DatasetEvent from Marquez's API tests.

One rewrite is applied: every job namespace becomes ``OPENLINEAGE_NAMESPACE`` (``default``), the connection that
the local stack's token may write to, because ingest refuses events of other namespaces with 403. The parent
facet's job namespace is rewritten with it when it named the same namespace. Dataset namespaces are left alone.

The client is ``openlineage.client.OpenLineageClient`` with an ``HttpTransport``: ``auth`` ``api_key`` (sent as
``Authorization: Bearer``) and ``compression: gzip``, the settings a production producer would use.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lineage_intake_tools.envfile import read_env_file
from lineage_intake_tools.local.template import ROOT

DEFAULT_ENV_FILE = ROOT / ".local" / "openlineage.env"
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
BUNDLE = (
    "marquez/docker/metadata.json",
    "openlineage/events/proxy-fluentd/docker/test-start.json",
    "openlineage/events/proxy-fluentd/docker/test-complete.json",
    "marquez/api-test-resources/open_lineage/event_job_event.json",
    "marquez/api-test-resources/open_lineage/event_dataset_event.json",
)
TERMINAL = ("COMPLETE", "FAIL", "ABORT")


class DemoError(Exception):
    """Something the user has to fix; the message says what."""


# ---------------------------------------------------------------------------- settings
def stack_settings(path: Path) -> dict[str, str]:
    if not path.exists():
        raise DemoError(
            f"{path} does not exist: the local stack is not running. Start it with `make run` in another "
            "terminal, wait for its 'ready' line, then run `make demo` again."
        )
    values = read_env_file(path)
    missing = [
        k
        for k in ("OPENLINEAGE_URL", "OPENLINEAGE_API_KEY", "LINEAGE_READ_TOKEN", "OPENLINEAGE_NAMESPACE")
        if not values.get(k)
    ]
    if missing:
        raise DemoError(f"{path} lacks {', '.join(missing)}: restart the local stack with `make run`")
    return values


def check_reachable(url: str, timeout: float = 3.0) -> None:
    """The stack answers (any HTTP answer will do): a left-over env file of a stopped stack fails here."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except OSError as exc:
        raise DemoError(
            f"nothing answers at {url} ({exc}): the local stack is not running. Start it with `make run` in "
            "another terminal, then run `make demo` again."
        ) from None
    finally:
        connection.close()


# ---------------------------------------------------------------------------- events
def with_namespace(raw: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """A copy of ``raw`` whose job namespace (and the parent's, when it was the same) is ``namespace``."""
    event = copy.deepcopy(dict(raw))
    job = event.get("job")
    if not isinstance(job, dict):
        return event
    original = job.get("namespace")
    job["namespace"] = namespace
    parent = ((event.get("run") or {}).get("facets") or {}).get("parent")
    if isinstance(parent, dict) and isinstance(parent.get("job"), dict) and parent["job"].get("namespace") == original:
        parent["job"]["namespace"] = namespace
    return event


def bundled_events(namespace: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for relative in BUNDLE:
        value = json.loads((CORPUS / relative).read_text(encoding="utf-8"))
        for raw in value if isinstance(value, list) else [value]:
            events.append(with_namespace(raw, namespace))
    return events


def client_event(raw: Mapping[str, Any]) -> Any:
    """A raw event (as JSON) as the client's ``event_v2`` object, keeping every facet as it is.

    Facets stay plain dictionaries: the client serialises them unchanged (attrs serialises nested dicts), so
    custom facets and extra fields survive. The exception is the ``tags`` facet, which the client itself
    updates (it adds its version tag) and therefore needs as its typed class. The client sets ``schemaURL``
    to its own spec version (2-0-2).
    """
    from openlineage.client import event_v2
    from openlineage.client.generated import tags_job, tags_run

    def facets_of(value: Mapping[str, Any] | None, tags_module: Any = None, prefix: str = "") -> dict[str, Any]:
        facets = dict(value or {})
        raw_tags = facets.get("tags")
        if tags_module is not None and isinstance(raw_tags, Mapping):
            fields = getattr(tags_module, f"Tags{prefix}FacetFields")
            facet = getattr(tags_module, f"Tags{prefix}Facet")
            facets["tags"] = facet(
                tags=[
                    fields(key=t["key"], value=t["value"], source=t.get("source")) for t in raw_tags.get("tags") or []
                ],
                producer=raw_tags.get("_producer", ""),
            )
        return facets

    def datasets(items: Sequence[Mapping[str, Any]] | None, kind: Any, facet_key: str | None) -> list[Any]:
        out = []
        for item in items or []:
            kwargs: dict[str, Any] = {"facets": dict(item.get("facets") or {})}
            if facet_key:
                kwargs[facet_key] = dict(item.get(facet_key) or {})
            out.append(kind(namespace=item["namespace"], name=item["name"], **kwargs))
        return out

    common = {"eventTime": raw["eventTime"], "producer": raw.get("producer", "")}
    if "dataset" in raw and "job" not in raw:
        dataset = raw["dataset"]
        static = event_v2.StaticDataset(
            namespace=dataset["namespace"], name=dataset["name"], facets=dict(dataset.get("facets") or {})
        )
        return event_v2.DatasetEvent(dataset=static, **common)
    job_facets = facets_of(raw["job"].get("facets"), tags_job, "Job")
    job = event_v2.Job(namespace=raw["job"]["namespace"], name=raw["job"]["name"], facets=job_facets)
    if "run" not in raw:
        return event_v2.JobEvent(
            job=job,
            inputs=datasets(raw.get("inputs"), event_v2.InputDataset, "inputFacets"),
            outputs=datasets(raw.get("outputs"), event_v2.OutputDataset, "outputFacets"),
            **common,
        )
    run = event_v2.Run(runId=raw["run"]["runId"], facets=facets_of(raw["run"].get("facets"), tags_run, "Run"))
    event_type = raw.get("eventType")
    return event_v2.RunEvent(
        eventType=event_v2.RunState(event_type) if event_type else None,
        run=run,
        job=job,
        inputs=datasets(raw.get("inputs"), event_v2.InputDataset, "inputFacets"),
        outputs=datasets(raw.get("outputs"), event_v2.OutputDataset, "outputFacets"),
        **common,
    )


def make_client(url: str, api_key: str, compression: str | None = "gzip", timeout: float = 10.0) -> Any:
    """The official client with an HttpTransport: API key auth and, by default, gzip."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    settings: dict[str, Any] = {
        "url": url,
        "endpoint": "api/v1/lineage",
        "timeout": timeout,
        "auth": {"type": "api_key", "apiKey": api_key},
    }
    if compression:
        settings["compression"] = compression
    return OpenLineageClient(transport=HttpTransport(HttpConfig.from_dict(settings)))


# ---------------------------------------------------------------------------- the demo
def cli(env: Mapping[str, str], *argv: str) -> int:
    """Run one ``lineage-intake`` command with the stack's settings, printing what it prints."""
    from lineage_intake_tools.cli import main

    return main(list(argv), env=dict(env))


def wait_for_run(env: Mapping[str, str], namespace: str, job: str, run_id: str, timeout: float = 15.0) -> bool:
    """Poll the Lineage table (as ``runs show`` reads it) until the run is merged in a terminal state."""
    import boto3
    from lineage_intake.lineage import normalize_run_id
    from lineage_intake.store.lineage import LineageStore

    client = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    ).client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"])
    store = LineageStore(client, env["LINEAGE_LINEAGE_TABLE"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = store.get_run(namespace, job, normalize_run_id(run_id))
        if item is not None and item.get("state") in TERMINAL:
            return True
        time.sleep(0.2)
    return False


def fetch_graph(url: str, token: str, node_id: str, depth: int) -> dict[str, Any]:
    """``GET /api/v1/lineage`` over HTTP with the read token, as a Marquez client would."""
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(url)
    query = urlencode({"nodeId": node_id, "depth": depth})
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    try:
        connection.request("GET", f"/api/v1/lineage?{query}", headers={"Authorization": f"Bearer {token}"})
        answer = connection.getresponse()
        body = answer.read()
    except OSError as exc:
        raise DemoError(f"GET /api/v1/lineage failed: {exc}") from exc
    finally:
        connection.close()
    if answer.status != 200:
        raise DemoError(f"GET /api/v1/lineage answered {answer.status}: {body[:200]!r}")
    graph: dict[str, Any] = json.loads(body)
    return graph


def print_graph(graph: Mapping[str, Any]) -> None:
    """One line per edge, ``origin -> destination``, then the node count."""
    edges = sorted({(e["origin"], e["destination"]) for n in graph["graph"] for e in n["outEdges"]})
    for origin, destination in edges:
        print(f"  {origin} -> {destination}")
    print(f"  ({len(graph['graph'])} nodes, {len(edges)} edges{', truncated' if graph.get('truncated') else ''})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lineage_intake_tools.local.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE, help="written by `make run`")
    args = parser.parse_args(argv)
    try:
        env = stack_settings(args.env_file)
        check_reachable(env["OPENLINEAGE_URL"])
    except DemoError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    namespace = env["OPENLINEAGE_NAMESPACE"]
    events = bundled_events(namespace)
    client = make_client(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], compression="gzip")
    print(f"Posting {len(events)} real OpenLineage events to {env['OPENLINEAGE_URL']} (gzip, API key) ...")
    try:
        for raw in events:
            client.emit(client_event(raw))
    except Exception as exc:
        print(f"make demo: the stack refused an event: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    runs = [
        (e["job"]["namespace"], e["job"]["name"], e["run"]["runId"])
        for e in events
        if "run" in e and e.get("eventType") in TERMINAL
    ]
    print(f"Accepted. Waiting for the merge of {len(runs)} runs ...")
    if not all(wait_for_run(env, *run) for run in runs):
        print("make demo: some runs were not merged in time; see the stack's log", file=sys.stderr)
        return 1

    print("\n$ lineage-intake runs list default etl_orders_7_days")
    cli(env, "runs", "list", namespace, "etl_orders_7_days")
    for job in ("etl_orders_7_days", "etl_delivery_7_days", "my-job"):
        run_id = next(r for n, j, r in runs if j == job)
        print(f"\n$ lineage-intake runs show {namespace} {job} {run_id}")
        cli(env, "runs", "show", namespace, job, run_id)
    for dataset_ns, name in (("food_delivery", "public.delivery_7_days"), ("food_delivery", "public.customers")):
        print(f"\n$ lineage-intake datasets show {dataset_ns} {name}")
        cli(env, "datasets", "show", dataset_ns, name)
    last = runs[-1]
    print(f"\n$ lineage-intake runs show {' '.join(last)} --json")
    cli(env, "runs", "show", *last, "--json")
    node = f"job:{namespace}:etl_delivery_7_days"  # the demo rewrites every job namespace to the token's
    url = f"{env['OPENLINEAGE_URL']}/api/v1/lineage?nodeId={node}&depth=1"
    print(f"\n$ curl -H 'Authorization: Bearer $LINEAGE_READ_TOKEN' '{url}'")
    try:
        print_graph(fetch_graph(env["OPENLINEAGE_URL"], env["LINEAGE_READ_TOKEN"], node, depth=1))
    except DemoError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    print(
        f"\nDone: {len(events)} events, {len(runs)} merged runs. Try it yourself:\n"
        f"  set -a; . {args.env_file}; set +a\n"
        f"  .venv/bin/lineage-intake runs list {namespace} etl_menus"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
