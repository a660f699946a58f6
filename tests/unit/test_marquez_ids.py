"""Node ids, names in URL paths and paging of the read API follow Marquez's rules (lineage_intake.marquez_ids)."""

from __future__ import annotations

import pytest
from lineage_intake.marquez_ids import (
    MAX_LIMIT,
    BadParameter,
    NodeId,
    dataset_node_id,
    decode_query_value,
    depth,
    field_node_id,
    job_node_id,
    lineage_window_days,
    page,
    parse_node_id,
    path_segments,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dataset:food_delivery:public.delivery_7_days", NodeId("dataset", "food_delivery", "public.delivery_7_days")),
        ("job:food_delivery:etl_orders_7_days", NodeId("job", "food_delivery", "etl_orders_7_days")),
        (
            "dataset:postgres://food_delivery_db:5432:public.orders",
            NodeId("dataset", "postgres://food_delivery_db:5432", "public.orders"),
        ),
        (
            "dataset:s3://bucket:raw/2026/11/20:part-0.parquet",
            NodeId("dataset", "s3://bucket", "raw/2026/11/20:part-0.parquet"),
        ),
        ("job:spark:app.job#1 with space", NodeId("job", "spark", "app.job#1 with space")),
        (
            "datasetField:kafka://broker:9092:orders:customer:email",
            NodeId("datasetField", "kafka://broker:9092", "orders", "customer:email"),
        ),
        ("job:émissions:tâche 🚚", NodeId("job", "émissions", "tâche 🚚")),
        ("dataset:warehouse:2026_orders", NodeId("dataset", "warehouse", "2026_orders")),
        ("job:ns:1:2", NodeId("job", "ns", "1:2")),
    ],
)
def test_node_ids_split_as_marquez_splits_them(value: str, expected: NodeId) -> None:
    # Given a node id whose parts may hold URIs with ports, '#', spaces, unicode and ':' in the last part
    # When it is parsed
    parsed = parse_node_id(value)
    # Then the parts are Marquez's, and formatting them gives the id back
    assert parsed == expected
    assert str(parsed) == value


def test_formatting_node_ids_joins_the_parts_with_colons_unescaped() -> None:
    # Given names with characters that URLs escape
    # Then the ids are Marquez's plain joins
    assert dataset_node_id("ns", "a/b c") == "dataset:ns:a/b c"
    assert job_node_id("ns", "j") == "job:ns:j"
    assert field_node_id("ns", "t", "f") == "datasetField:ns:t:f"


@pytest.mark.parametrize("value", ["run:123", "table:ns:name", "dataset:onlynamespace", "dataset::name", "job:ns:", ""])
def test_a_node_id_of_another_shape_is_a_bad_parameter_naming_node_id(value: str) -> None:
    # Given an id that is not dataset:NS:NAME, job:NS:NAME or datasetField:NS:NAME:FIELD
    # When it is parsed
    # Then the error names the parameter, for a 400
    with pytest.raises(BadParameter) as caught:
        parse_node_id(value)
    assert caught.value.parameter == "nodeId"
    assert caught.value.message.startswith("nodeId: ")


def test_path_segments_are_split_before_they_are_decoded() -> None:
    # Given a raw path with an encoded '/', ':', '#', space, '+' and unicode inside names, and a trailing slash
    raw = "/api/v1/namespaces/s3%3A%2F%2Fbucket/datasets/raw%2Forders%23v1%20x+y%F0%9F%9A%9A/"
    # When it is split
    segments = path_segments(raw)
    # Then each name is one segment, decoded, and '+' stays a plus sign in paths
    assert segments == ["api", "v1", "namespaces", "s3://bucket", "datasets", "raw/orders#v1 x+y🚚"]


def test_a_path_escape_that_is_not_utf8_is_a_bad_parameter() -> None:
    # Given a segment with an escape of a lone continuation byte
    # Then it is refused with a message, not decoded into replacement characters
    with pytest.raises(BadParameter):
        path_segments("/api/v1/namespaces/%80")


def test_query_values_are_form_decoded_and_keep_a_stray_percent() -> None:
    # Given the web UI's unencoded search text and a client's encoded one
    # Then '+' is a space, escapes are decoded, and a '%' that starts no escape is kept
    assert decode_query_value("delivery+7%25") == "delivery 7%"
    assert decode_query_value("100% sure") == "100% sure"
    assert decode_query_value("caf%C3%A9") == "café"


def test_paging_defaults_to_marquez_values_and_refuses_out_of_range_values() -> None:
    # Given no limit and offset
    # Then Marquez's defaults apply
    assert page(None, None) == page("100", "0")
    # And values beyond the caps are 400s naming the parameter, never silently clamped
    with pytest.raises(BadParameter, match=r"^limit: "):
        page(str(MAX_LIMIT + 1), None)
    with pytest.raises(BadParameter, match=r"^offset: "):
        page(None, "-1")
    with pytest.raises(BadParameter, match=r"^limit: must be an integer"):
        page("ten", None)


def test_depth_and_lineage_window_have_defaults_and_bounds() -> None:
    # Given Marquez's default depth and our stack-wide window default
    # Then absent values take them, and nonsense is refused
    assert depth(None) == 20
    assert lineage_window_days(None) == 30
    assert lineage_window_days(None, default=7) == 7
    with pytest.raises(BadParameter, match=r"^lineageWindowDays: "):
        lineage_window_days("0")
    with pytest.raises(BadParameter, match=r"^depth: "):
        depth("1000")
