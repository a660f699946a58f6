"""Read use cases: the lineage graph (``/lineage``) and column lineage (``/column-lineage``).

Breadth-first walks, one Query per node visited (a job: its partition; a dataset: its gsi1 partition; a field:
its gsi1, plus gsi2 downstream), stopping at ``GRAPH_NODE_CAP`` nodes with ``truncated: true``. Depth and edge
semantics (window, ``current``): docs/read-api.md "Graph semantics".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lineage_intake.errors import NotFound
from lineage_intake.marquez import (
    ColumnLineageInputField,
    ColumnLineageNodeData,
    Edge,
    LineageGraph,
    Node,
)
from lineage_intake.marquez_ids import GRAPH_NODE_CAP, BadParameter, NodeId, dataset_node_id, field_node_id, job_node_id
from lineage_intake.service.read_views import dataset_view, fields_of, job_view, time_of
from lineage_intake.store.catalog import CatalogStore


@dataclass
class _Node:
    node_id: str
    kind: str
    data: Any = None
    ins: dict[str, Edge] = field(default_factory=dict)
    outs: dict[str, Edge] = field(default_factory=dict)


@dataclass
class _Graph:
    nodes: dict[str, _Node] = field(default_factory=dict)
    truncated: bool = False

    def node(self, node_id: str, kind: str) -> _Node:
        return self.nodes.setdefault(node_id, _Node(node_id, kind))

    def link(self, origin: str, destination: str, edge: Edge) -> None:
        """An edge between two nodes of the graph, on both (Marquez lists it as the origin's outEdge and the
        destination's inEdge)."""
        if origin in self.nodes and destination in self.nodes:
            self.nodes[origin].outs.setdefault(destination, edge)
            self.nodes[destination].ins.setdefault(origin, edge)

    def answer(self) -> LineageGraph:
        nodes = [
            Node(
                id=n.node_id,
                type=n.kind,
                data=n.data,
                in_edges=[n.ins[k] for k in sorted(n.ins)],
                out_edges=[n.outs[k] for k in sorted(n.outs)],
            )
            for n in sorted(self.nodes.values(), key=lambda n: n.node_id)
        ]
        return LineageGraph(graph=nodes, truncated=self.truncated)


def _ref(value: Any) -> tuple[str, str] | None:
    if isinstance(value, Mapping) and value.get("namespace") and value.get("name"):
        return str(value["namespace"]), str(value["name"])
    return None


@dataclass
class GraphReader:
    lineage: CatalogStore
    window_days: int = 30
    clock: Any = lambda: datetime.now(UTC)
    node_cap: int = GRAPH_NODE_CAP

    # ------------------------------------------------------------------ job/dataset lineage
    def lineage_graph(
        self, start: NodeId, depth: int, current_only: bool = False, window_days: int | None = None
    ) -> LineageGraph:
        """The jobs and datasets around ``start``: ``depth`` job-to-job hops (depth 0: the start's jobs and
        their datasets). History edges whose ``lastSeen`` is older than the window are left out;
        ``current_only`` keeps only the edges of each job's latest dataset-bearing run (and static edges).

        Reads: one Query per job (its partition: item and edges), one gsi1 Query per dataset that the walk goes
        through to reach more jobs (not for the last ring, nor once truncated), and after the walk one
        BatchGetItem per 100 dataset nodes (their items). At most one request per node whenever the last ring or
        the cap leaves a dataset per hundred unqueried (docs/read-api.md "Requests per node")."""
        if start.kind == "datasetField":
            start = NodeId("dataset", start.namespace, start.name)
        horizon = self.clock() - timedelta(days=window_days or self.window_days)
        graph = _Graph()
        edges: list[tuple[str, str, Edge]] = []
        seen_jobs: set[tuple[str, str]] = set()
        seen_datasets: set[tuple[str, str]] = set()

        def keep(edge: Mapping[str, Any]) -> Edge | None:
            is_current = edge.get("current", True) is not False
            if current_only and not is_current:
                return None
            last_seen = edge.get("lastSeen")
            if not is_current and last_seen and time_of(last_seen) < horizon:
                return None
            return Edge(
                origin="",
                destination="",
                first_seen=time_of(edge["firstSeen"]) if edge.get("firstSeen") else None,
                last_seen=time_of(last_seen) if last_seen and not is_current else None,
                current=is_current,
            )

        def jobs_of_dataset(ref: tuple[str, str]) -> list[tuple[str, str]]:
            found = []
            for item in self.lineage.dataset_edges(*ref):
                job = _ref(item.get("job"))
                if job is not None and job not in seen_jobs and keep(item) is not None:
                    found.append(job)
            return found

        def add_datasets(refs: list[tuple[str, str]]) -> list[tuple[str, str]]:
            """Name the new datasets as nodes (up to the cap); their items are read once, after the walk."""
            new = [r for r in dict.fromkeys(refs) if r not in seen_datasets]
            room = max(0, self.node_cap - len(graph.nodes))
            if len(new) > room:
                graph.truncated, new = True, new[:room]
            for ref in new:
                seen_datasets.add(ref)
                graph.node(dataset_node_id(*ref), "DATASET")
            return new

        if start.kind == "job":
            frontier = [(start.namespace, start.name)]
        else:
            ref = (start.namespace, start.name)
            add_datasets([ref])
            frontier = jobs_of_dataset(ref)
        level = 0
        while frontier and not graph.truncated:
            reached: list[tuple[str, str]] = []
            for job in dict.fromkeys(frontier):
                if job in seen_jobs:
                    continue
                if len(graph.nodes) >= self.node_cap:
                    graph.truncated = True
                    break
                seen_jobs.add(job)
                records = self.lineage.job_records(*job)
                if records.job is None:
                    if start.kind == "job" and level == 0:
                        raise NotFound(f"Job '{job[1]}' not found in namespace '{job[0]}'.")
                    continue
                job_id = job_node_id(*job)
                kept = [(item, mark) for item in records.edges if (mark := keep(item)) is not None]
                graph.node(job_id, "JOB").data = job_view(records.job, [item for item, _ in kept])
                for item, mark in kept:
                    dataset = _ref(item.get("dataset"))
                    if dataset is None:
                        continue
                    ds_id = dataset_node_id(*dataset)
                    origin, destination = (ds_id, job_id) if item.get("direction") == "IN" else (job_id, ds_id)
                    edges.append(
                        (origin, destination, mark.model_copy(update={"origin": origin, "destination": destination}))
                    )
                    reached.append(dataset)
            new = add_datasets(reached)
            frontier = []
            if level < depth and not graph.truncated:  # a truncated walk goes no further: no reads for it
                for dataset in new:
                    frontier += jobs_of_dataset(dataset)
            level += 1
        # Every dataset node's item, read after the walk: one BatchGetItem per 100 for the whole graph, not one
        # (mostly partial) batch per level (docs/read-api.md "Requests per node").
        items = self.lineage.datasets(sorted(seen_datasets))
        if start.kind != "job" and (start.namespace, start.name) not in items:
            raise NotFound(f"Dataset '{start.name}' not found in namespace '{start.namespace}'.")
        for ref, item in items.items():
            graph.nodes[dataset_node_id(*ref)].data = dataset_view(item)
        for origin, destination, edge in edges:
            graph.link(origin, destination, edge)
        return graph.answer()

    # ------------------------------------------------------------------ column lineage
    def column_lineage(self, start: NodeId, depth: int, with_downstream: bool) -> LineageGraph:
        """Dataset fields and the fields they are computed from (upstream, ``depth`` hops), and with
        ``with_downstream`` the fields computed from them. One Query per field and direction."""
        if start.kind == "job":
            raise BadParameter("nodeId", "column lineage starts at a dataset or a datasetField node")
        item = self.lineage.get_dataset(start.namespace, start.name)
        if item is None:
            raise NotFound(f"Dataset '{start.name}' not found in namespace '{start.namespace}'.")
        types = {str(f["name"]): f.get("type") for f in fields_of(item)}
        if start.field is not None:
            if start.field not in types:
                raise NotFound(f"Field '{start.field}' not found in dataset '{start.name}'.")
            starts = [(start.namespace, start.name, start.field)]
        else:
            starts = [(start.namespace, start.name, f) for f in types]
        graph = _Graph()
        edges: list[tuple[str, str]] = []
        field_types: dict[tuple[str, str], dict[str, Any]] = {(start.namespace, start.name): types}

        def walk(direction: str) -> None:
            seen: set[tuple[str, str, str]] = set()
            frontier = list(starts)
            for _level in range(depth + 1):
                following: list[tuple[str, str, str]] = []
                for fld in frontier:
                    if fld in seen:
                        continue
                    seen.add(fld)
                    if field_node_id(*fld) not in graph.nodes and len(graph.nodes) >= self.node_cap:
                        graph.truncated = True
                        return
                    node = graph.node(field_node_id(*fld), "DATASET_FIELD")
                    found = (
                        self.lineage.column_lineage(*fld) if direction == "up" else self.lineage.column_downstream(*fld)
                    )
                    inputs: list[ColumnLineageInputField] = []
                    for edge in found:
                        other = edge.get("input") if direction == "up" else edge.get("output")
                        if not isinstance(other, Mapping):
                            continue
                        other_ref = (str(other.get("namespace")), str(other.get("name")), str(other.get("field")))
                        transformation = (edge.get("transformations") or [{}])[0] if edge.get("transformations") else {}
                        if direction == "up":
                            inputs.append(
                                ColumnLineageInputField(
                                    namespace=other_ref[0],
                                    dataset=other_ref[1],
                                    field=other_ref[2],
                                    transformation_description=transformation.get("description"),
                                    transformation_type=transformation.get("type"),
                                )
                            )
                            edges.append((field_node_id(*other_ref), node.node_id))
                        else:
                            edges.append((node.node_id, field_node_id(*other_ref)))
                        following.append(other_ref)
                    if node.data is None or (direction == "up" and inputs):
                        node.data = ColumnLineageNodeData(
                            namespace=fld[0],
                            dataset=fld[1],
                            field=fld[2],
                            field_type=_type_of(field_types, fld),
                            input_fields=inputs or (node.data.input_fields if node.data else []),
                        )
                frontier = following
            for fld in frontier:  # the ring beyond depth: named as nodes, not walked
                if fld not in seen and len(graph.nodes) < self.node_cap:
                    node = graph.node(field_node_id(*fld), "DATASET_FIELD")
                    if node.data is None:
                        node.data = ColumnLineageNodeData(namespace=fld[0], dataset=fld[1], field=fld[2])

        walk("up")
        if with_downstream:
            walk("down")
        for origin, destination in edges:
            graph.link(origin, destination, Edge(origin=origin, destination=destination))
        return graph.answer()


def _type_of(types: dict[tuple[str, str], dict[str, Any]], fld: tuple[str, str, str]) -> str | None:
    known = types.get((fld[0], fld[1]), {})
    value = known.get(fld[2])
    return str(value) if value else None
