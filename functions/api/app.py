"""Read function: Marquez's GET API over the Lineage and Events tables (docs/read-api.md), and the helpful 404
of the HTTP API's ``$default`` route.

Thin by design: Powertools routes and validates, ``lineage_intake.service.read_*`` answer, and domain errors
become Marquez's error shape in ``_domain_error`` and nowhere else. Names are taken from the raw path and
decoded per segment (``marquez_ids``), so ``%2F`` inside a name is not a path separator.
"""

from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from lineage_intake import marquez as m
from lineage_intake import marquez_ids as ids
from lineage_intake.config import ReadSettings
from lineage_intake.errors import DomainError, Forbidden, NotFound, StorageUnavailable
from lineage_intake.logs import function_logger
from lineage_intake.principal import Principal
from lineage_intake.service.read_catalog import Catalog
from lineage_intake.service.read_events import EventsReader
from lineage_intake.service.read_graph import GraphReader
from lineage_intake.service.read_runlineage import RunLineageReader
from lineage_intake.service.read_stats import StatsReader, period_of, zone_of
from lineage_intake.service.read_views import time_of

settings = ReadSettings.from_env()
logger = function_logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayHttpResolver(enable_validation=True)

STATUS: dict[type[DomainError], int] = {ids.BadParameter: 400, Forbidden: 403, NotFound: 404, StorageUnavailable: 503}
READ_ONLY = (
    "lineage-intake is read-only over this API: lineage is changed by sending OpenLineage events, so deleting "
    'jobs or datasets and editing tags are not offered (docs/read-api.md, "Writes")'
)
WRONG_URL = (
    "no such endpoint: POST events to /api/v1/lineage (or arrays to /api/v1/lineage/batch); "
    "OPENLINEAGE_URL is the base URL, without /api/v1/lineage. Read lineage with GET /api/v1/namespaces, "
    "/api/v1/lineage?nodeId=..., /api/v1/events/lineage; the full list is GET /api/v1/openapi.json"
)
Param = Annotated[str | None, Query()]


@cache
def _services() -> tuple[Catalog, GraphReader, EventsReader, RunLineageReader]:
    """Clients are created on first use, once per container, and passed into the services."""
    import boto3
    from botocore.config import Config
    from lineage_intake.store.catalog import CatalogStore
    from lineage_intake.store.events import EventsStore

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    dynamodb = boto3.client("dynamodb", config=config)
    s3 = cache(lambda: boto3.client("s3", config=config))
    lineage = CatalogStore(dynamodb, settings.lineage_table)
    events = EventsStore(dynamodb, settings.events_table, settings.body_bucket, s3)
    catalog = Catalog(lineage, events)
    return (
        catalog,
        GraphReader(lineage, window_days=settings.lineage_window_days),
        EventsReader(lineage, events),
        RunLineageReader(catalog),
    )


def _read() -> tuple[Catalog, GraphReader, EventsReader, RunLineageReader]:
    """The services, for a token with the ``read`` scope only (403 naming the scope otherwise)."""
    Principal.from_context(app.current_event.request_context.authorizer.get_lambda).check_scope("read")
    return _services()


def _stats() -> StatsReader:
    return StatsReader(_read()[0].lineage)


def _segment(raw: str) -> str:
    """One raw path segment, percent-decoded (``marquez_ids``: ``%2F`` is a ``/`` inside a name)."""
    (value,) = ids.path_segments(raw) or [""]
    return value


def _query(name: str) -> str | None:
    """A query value from the raw query string, form-decoded (``+`` is a space, a stray ``%`` is kept)."""
    for pair in (app.current_event.raw_query_string or "").split("&"):
        key, sep, value = pair.partition("=")
        if ids.decode_query_value(key, name) == name:
            return ids.decode_query_value(value, name) if sep else ""
    return None


def _queries(name: str) -> list[str]:
    """Every value of a repeatable query parameter, each also split on commas (``a=X&a=Y`` or ``a=X,Y``)."""
    out = []
    for pair in (app.current_event.raw_query_string or "").split("&"):
        key, _, value = pair.partition("=")
        if ids.decode_query_value(key, name) == name:
            out += [v for v in ids.decode_query_value(value, name).split(",") if v]
    return out


def _page() -> ids.Page:
    return ids.page(_query("limit"), _query("offset"))


def ok(model: type[m.MarquezModel]) -> dict[int | str, Any]:
    """The OpenAPI answers of a route: its Marquez model, and Marquez's error shape.

    Declared here rather than as the return type, so that Powertools does not serialize the answer again
    (it would write ``null`` for every absent optional field; ``MarquezModel.dump()`` leaves them out)."""
    error = {"application/json": {"model": m.ErrorResponse}}
    return {
        200: {"description": "OK", "content": {"application/json": {"model": model}}},
        400: {"description": "a parameter is malformed or out of range", "content": error},
        403: {"description": "the token lacks the read scope", "content": error},
        404: {"description": "not found", "content": error},
    }


def _json(body: m.MarquezModel, status: int = 200) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body.dump())


# ---------------------------------------------------------------------------------------------- namespaces
@app.get("/api/v1/namespaces", summary="List namespaces", responses=ok(m.NamespaceList))
def list_namespaces(limit: Param = None, offset: Param = None) -> Response[Any]:
    return _json(_read()[0].namespaces(_page()))


@app.get("/api/v1/namespaces/<namespace>", summary="Get a namespace", responses=ok(m.Namespace))
def get_namespace(namespace: str) -> Response[Any]:
    return _json(_read()[0].namespace(_segment(namespace)))


# ---------------------------------------------------------------------------------------------- jobs and runs
@app.get("/api/v1/jobs", summary="Every namespace's jobs (Marquez's web UI dashboard)", responses=ok(m.JobList))
def list_all_jobs(limit: Param = None, offset: Param = None, lastRunStates: Param = None) -> Response[Any]:
    states = [s.upper() for s in _queries("lastRunStates")]
    unknown = [s for s in states if s not in m.RUN_STATES]
    if unknown:
        raise ids.BadParameter("lastRunStates", f"must be among {', '.join(m.RUN_STATES)}, got {unknown[0]!r}")
    return _json(_read()[0].all_jobs(_page(), frozenset(states)))  # type: ignore[arg-type]


@app.get("/api/v1/namespaces/<namespace>/jobs", summary="List a namespace's jobs", responses=ok(m.JobList))
def list_jobs(namespace: str, limit: Param = None, offset: Param = None) -> Response[Any]:
    return _json(_read()[0].jobs(_segment(namespace), _page()))


@app.get("/api/v1/namespaces/<namespace>/jobs/<job>", summary="Get a job", responses=ok(m.Job))
def get_job(namespace: str, job: str) -> Response[Any]:
    return _json(_read()[0].job(_segment(namespace), _segment(job)))


@app.get(
    "/api/v1/namespaces/<namespace>/jobs/<job>/runs", summary="List a job's runs, newest first", responses=ok(m.RunList)
)
def list_runs(namespace: str, job: str, limit: Param = None, offset: Param = None) -> Response[Any]:
    return _json(_read()[0].runs(_segment(namespace), _segment(job), _page()))


@app.get("/api/v1/jobs/runs/<run_id>", summary="Get a run by its runId", responses=ok(m.Run))
def get_run(run_id: str) -> Response[Any]:
    return _json(_read()[0].run(_segment(run_id)))


@app.get(
    "/api/v1/jobs/runs/<run_id>/children",
    summary="The runs whose parent facet names this run (lineage-intake extension)",
    responses=ok(m.RunList),
)
def get_run_children(run_id: str, limit: Param = None, offset: Param = None) -> Response[Any]:
    return _json(_read()[0].run_children(_segment(run_id), _page()))


@app.get("/api/v1/jobs/runs/<run_id>/facets", summary="A run's run or job facets", responses=ok(m.FacetsResult))
def get_run_facets(run_id: str, type: Param = None) -> Response[Any]:
    kind = (_query("type") or "").lower()
    if kind not in ("run", "job"):
        raise ids.BadParameter("type", f"must be run or job, got {_query('type')!r}")
    facet_kind: Literal["run", "job"] = "run" if kind == "run" else "job"
    return _json(_read()[0].run_facets(_segment(run_id), facet_kind))


# ---------------------------------------------------------------------------------------------- datasets
@app.get("/api/v1/namespaces/<namespace>/datasets", summary="List a namespace's datasets", responses=ok(m.DatasetList))
def list_datasets(namespace: str, limit: Param = None, offset: Param = None) -> Response[Any]:
    return _json(_read()[0].datasets(_segment(namespace), _page()))


@app.get("/api/v1/namespaces/<namespace>/datasets/<dataset>", summary="Get a dataset", responses=ok(m.Dataset))
def get_dataset(namespace: str, dataset: str) -> Response[Any]:
    return _json(_read()[0].dataset(_segment(namespace), _segment(dataset)))


@app.get(
    "/api/v1/namespaces/<namespace>/datasets/<dataset>/versions",
    summary="A dataset's versions (one per distinct schema), newest first",
    responses=ok(m.DatasetVersionList),
)
def list_dataset_versions(namespace: str, dataset: str, limit: Param = None, offset: Param = None) -> Response[Any]:
    return _json(_read()[0].dataset_versions(_segment(namespace), _segment(dataset), _page()))


# ---------------------------------------------------------------------------------------------- tags, stats
@app.get("/api/v1/tags", summary="Tags, from the tags facets of jobs", responses=ok(m.TagList))
def list_tags(limit: Param = None, offset: Param = None) -> Response[Any]:
    return _json(_read()[0].tags(_page()))


def _bare(items: list[Any]) -> Response[Any]:
    """The stats endpoints answer a bare JSON array (Marquez's shape)."""
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=[i.dump() for i in items])


@app.get("/api/v1/stats/lineage-events", summary="Run events per bucket (dashboard)", responses=ok(m.LineageMetric))
def stats_lineage_events(period: Param = None, timezone: Param = None) -> Response[Any]:
    return _bare(_stats().lineage_events(period_of(_query("period")), zone_of(_query("timezone"))))


@app.get(
    "/api/v1/stats/<kind>",
    summary="Jobs, datasets or sources active per bucket (dashboard)",
    responses=ok(m.IntervalMetric),
)
def stats_interval(kind: str, period: Param = None, timezone: Param = None) -> Response[Any]:
    if kind not in ("jobs", "datasets", "sources"):
        raise NotFound(f"no such statistic {kind!r}: jobs, datasets, sources or lineage-events")
    reader = _stats()
    return _bare(reader.interval(kind, period_of(_query("period")), zone_of(_query("timezone"))))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- writes
# The UI's write buttons (docs/read-api.md "Writes"): refused for every token, before any read or write.
def _read_only() -> Response[Any]:
    return _json(m.ErrorResponse(code=403, message=READ_ONLY), 403)


@app.delete("/api/v1/namespaces/<namespace>/jobs/<job>", include_in_schema=False)
def delete_job(namespace: str, job: str) -> Response[Any]:
    return _read_only()


@app.delete("/api/v1/namespaces/<namespace>/datasets/<dataset>", include_in_schema=False)
def delete_dataset(namespace: str, dataset: str) -> Response[Any]:
    return _read_only()


@app.put("/api/v1/tags/<tag>", include_in_schema=False)
def put_tag(tag: str) -> Response[Any]:
    return _read_only()


@app.post("/api/v1/namespaces/<namespace>/jobs/<job>/tags/<tag>", include_in_schema=False)
@app.delete("/api/v1/namespaces/<namespace>/jobs/<job>/tags/<tag>", include_in_schema=False)
def tag_job(namespace: str, job: str, tag: str) -> Response[Any]:
    return _read_only()


@app.post("/api/v1/namespaces/<namespace>/datasets/<dataset>/tags/<tag>", include_in_schema=False)
@app.delete("/api/v1/namespaces/<namespace>/datasets/<dataset>/tags/<tag>", include_in_schema=False)
def tag_dataset(namespace: str, dataset: str, tag: str) -> Response[Any]:
    return _read_only()


@app.post("/api/v1/namespaces/<namespace>/datasets/<dataset>/fields/<field>/tags/<tag>", include_in_schema=False)
@app.delete("/api/v1/namespaces/<namespace>/datasets/<dataset>/fields/<field>/tags/<tag>", include_in_schema=False)
def tag_field(namespace: str, dataset: str, field: str, tag: str) -> Response[Any]:
    return _read_only()


# ---------------------------------------------------------------------------------------------- graphs
@app.get("/api/v1/lineage", summary="The lineage graph around a job or a dataset", responses=ok(m.LineageGraph))
def get_lineage(
    nodeId: Param = None, depth: Param = None, lineageWindowDays: Param = None, current: Param = None
) -> Response[Any]:
    node = ids.parse_node_id(_required("nodeId"))
    window = ids.lineage_window_days(_query("lineageWindowDays"), settings.lineage_window_days)
    graph = _read()[1].lineage_graph(
        node, ids.depth(_query("depth")), ids.boolean("current", _query("current")), window_days=window
    )
    return _json(graph)


@app.get(
    "/api/v1/column-lineage", summary="Column lineage around a dataset or a dataset field", responses=ok(m.LineageGraph)
)
def get_column_lineage(nodeId: Param = None, depth: Param = None, withDownstream: Param = None) -> Response[Any]:
    node = ids.parse_node_id(_required("nodeId"))
    downstream = ids.boolean("withDownstream", _query("withDownstream"))
    return _json(_read()[1].column_lineage(node, ids.depth(_query("depth")), downstream))


@app.get(
    "/api/v1/runlineage/upstream",
    summary="The runs and dataset versions a run depended on",
    responses=ok(m.UpstreamRunLineage),
)
def get_run_lineage_upstream(runId: Param = None, depth: Param = None) -> Response[Any]:
    run_id = _required("runId")
    return _json(_read()[3].upstream(run_id, ids.depth(_query("depth"))))


# ---------------------------------------------------------------------------------------------- events, search
def _time(name: str) -> Any:
    raw = _query(name)
    if not raw:
        return None
    moment = time_of(raw)
    if moment == time_of(None) and not raw.startswith("1970"):
        raise ids.BadParameter(name, f"must be an ISO-8601 time, got {raw!r}")
    return moment


def _events(namespace: str | None = None) -> Response[Any]:
    direction = (_query("sortDirection") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise ids.BadParameter("sortDirection", f"must be asc or desc, got {_query('sortDirection')!r}")
    reader = _read()[2]
    answer = reader.lineage_events(_page(), _time("before"), _time("after"), namespace, direction == "asc")
    return _json(answer)


@app.get("/api/v1/events/lineage", summary="Stored raw run events, newest first", responses=ok(m.LineageEventList))
def list_lineage_events(
    before: Param = None, after: Param = None, limit: Param = None, offset: Param = None, sortDirection: Param = None
) -> Response[Any]:
    return _events()


@app.get(
    "/api/v1/events",
    summary="Stored raw run events (the path marquez-python 0.50.0 calls)",
    responses=ok(m.LineageEventList),
)
def list_events(limit: Param = None, offset: Param = None) -> Response[Any]:
    return _events()


@app.get(
    "/api/v1/events/<namespace>",
    summary="Stored raw run events of a job namespace (marquez-python 0.50.0)",
    responses=ok(m.LineageEventList),
)
def list_namespace_events(namespace: str, limit: Param = None, offset: Param = None) -> Response[Any]:
    return _events(_segment(namespace))


@app.get("/api/v1/search", summary="Jobs and datasets whose name contains q", responses=ok(m.SearchResultList))
def search(
    q: Param = None, filter: Param = None, sort: Param = None, limit: Param = None, namespace: Param = None
) -> Response[Any]:
    text = _required("q")
    kind = (_query("filter") or "").upper() or None
    if kind not in (None, "JOB", "DATASET"):
        raise ids.BadParameter("filter", f"must be JOB or DATASET, got {_query('filter')!r}")
    order = (_query("sort") or "UPDATE_AT").upper()
    if order not in ("UPDATE_AT", "NAME"):
        raise ids.BadParameter("sort", f"must be UPDATE_AT or NAME, got {_query('sort')!r}")
    page = ids.page(_query("limit"), None, default_limit=ids.DEFAULT_SEARCH_LIMIT, max_limit=ids.MAX_SEARCH_LIMIT)
    reader = _read()[2]
    return _json(reader.search(text, kind, page.limit, _query("namespace"), order))  # type: ignore[arg-type]


def _required(name: str) -> str:
    value = _query(name)
    if not value:
        raise ids.BadParameter(name, "is required")
    return value


# ---------------------------------------------------------------------------------------------- openapi, errors
@app.get("/api/v1/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
def openapi() -> Response[Any]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=app.get_openapi_json_schema())


@app.not_found
def _wrong_url(exc: NotFoundError) -> Response[Any]:
    return _json(m.ErrorResponse(code=404, message=WRONG_URL), 404)


@app.exception_handler(RequestValidationError)
def _bad_request(exc: RequestValidationError) -> Response[Any]:
    errors = exc.errors()
    where = ".".join(str(p) for p in errors[0].get("loc", ())[1:]) if errors else "request"
    return _json(
        m.ErrorResponse(code=400, message=f"{where or 'request'}: {errors[0]['msg'] if errors else 'invalid'}"), 400
    )


@app.exception_handler(DomainError)
def _domain_error(exc: DomainError) -> Response[Any]:
    status = STATUS.get(type(exc), 500)
    headers = {"Retry-After": str(exc.retry_after_seconds)} if isinstance(exc, StorageUnavailable) else None
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=m.ErrorResponse(code=status, message=exc.message).dump(),
        headers=headers,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A trailing slash names the same resource (docs/read-api.md): route on the path without it.
    raw = str(event.get("rawPath") or "/")
    if len(raw) > 1 and raw.endswith("/"):
        event = {**event, "rawPath": raw.rstrip("/") or "/"}
    return app.resolve(event, context)
