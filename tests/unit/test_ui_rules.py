"""Pure rules behind Marquez's web UI endpoints (issue 14): the stats buckets in a time zone, tags facets, and the
dataset attributes kept for the UI (column-lineage fields, lifecycle state, when tags are written)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from lineage_intake import facets
from lineage_intake.lineage import DatasetView, Ref
from lineage_intake.marquez_ids import BadParameter
from lineage_intake.service.read_stats import buckets, period_of, zone_of
from lineage_intake.store.lineage_items import dataset_ui_changes


def test_a_day_is_24_hourly_buckets_ending_with_the_current_hour_in_the_zone() -> None:
    # Given 10:17 UTC, a Paris viewer (UTC+1 in November); When the DAY buckets are made
    now = datetime(2026, 11, 21, 10, 17, tzinfo=UTC)
    day = buckets("DAY", ZoneInfo("Europe/Paris"), now)
    # Then 24 one-hour buckets, oldest first, the last one holding now, each in Paris time
    assert len(day) == 24 and all(end - start == timedelta(hours=1) for start, end in day)
    assert day[-1][0] <= now < day[-1][1] and day[-1][0].isoformat() == "2026-11-21T11:00:00+01:00"
    assert [s for s, _ in day] == sorted(s for s, _ in day)


def test_a_week_is_7_local_days_including_today_across_a_dst_change() -> None:
    # Given a New York viewer the Wednesday after the November DST change; When the WEEK buckets are made
    now = datetime(2026, 11, 4, 15, 0, tzinfo=UTC)
    week = buckets("WEEK", ZoneInfo("America/New_York"), now)
    # Then 7 local midnights, today last, and the day of the change is 25 hours long
    assert [s.day for s, _ in week] == [29, 30, 31, 1, 2, 3, 4]
    assert all(s.hour == 0 and e.hour == 0 for s, e in week)
    lengths = [(e.astimezone(UTC) - s.astimezone(UTC)) for s, e in week]
    assert lengths.count(timedelta(hours=25)) == 1 and lengths.count(timedelta(hours=24)) == 6


def test_period_and_timezone_are_checked_and_name_their_parameter() -> None:
    assert period_of(None) == "DAY" and period_of("week") == "WEEK"
    with pytest.raises(BadParameter, match="period"):
        period_of("MONTH")
    assert zone_of(None) == ZoneInfo("UTC") and zone_of("Asia/Kolkata") == ZoneInfo("Asia/Kolkata")
    for bad in ("Mars/Olympus", "../etc/passwd", "/etc/localtime"):
        with pytest.raises(BadParameter, match="timezone"):
            zone_of(bad)


def test_a_tags_facet_gives_sorted_unique_names_with_their_source() -> None:
    facet = {
        "tags": {
            "tags": [
                {"key": "tier", "value": "gold", "source": "CONFIG"},
                {"key": "pii", "value": "true"},
                {"key": "pii", "value": ""},
                {"key": "owner", "value": "owner"},
                {"value": "no key"},
                "not a tag",
            ]
        }
    }
    assert facets.tags(facet) == ({"name": "owner"}, {"name": "pii"}, {"name": "tier:gold", "source": "CONFIG"})
    assert facets.tags({}) is None and facets.tags({"tags": {"tags": []}}) is None


def test_column_lineage_fields_are_the_facets_output_fields_sorted_and_bounded() -> None:
    # Given a columnLineage facet with fields in any order, one malformed entry, and more fields than kept
    facet = {"fields": {"total": {"inputFields": []}, "id": {"inputFields": []}, "bad": "not a mapping"}}
    many = {"fields": {f"c{i:04d}": {} for i in range(facets.MAX_COLUMN_FIELDS + 5)}}
    # When the reader reads them; Then the valid names, sorted, at most MAX_COLUMN_FIELDS; None without fields
    assert facets.column_lineage_fields({"columnLineage": facet}) == ("id", "total")
    assert len(facets.column_lineage_fields({"columnLineage": many}) or ()) == facets.MAX_COLUMN_FIELDS
    assert facets.column_lineage_fields({"columnLineage": {"fields": {}}}) is None
    assert facets.column_lineage_fields({}) is None


def test_lifecycle_state_is_the_facets_value_or_none() -> None:
    assert facets.lifecycle_state({"lifecycleStateChange": {"lifecycleStateChange": "OVERWRITE"}}) == "OVERWRITE"
    assert facets.lifecycle_state({"lifecycleStateChange": {"lifecycleStateChange": ""}}) is None
    assert facets.lifecycle_state({"lifecycleStateChange": "DROP"}) is None
    assert facets.lifecycle_state({}) is None


def test_a_datasets_ui_attributes_are_written_only_when_a_run_reports_a_change() -> None:
    ref = Ref("food_delivery", "public.orders")
    tagged = DatasetView(ref, None, None, tags=({"name": "pii", "source": "CONFIG"},), column_fields=("total",))
    stored = {"tags": [{"name": "pii", "source": "CONFIG"}], "columnLineageFields": ["total"]}
    # Given a run reporting what is stored, one reporting nothing, and one reporting new tags
    same = dataset_ui_changes(tagged, stored)
    silent = dataset_ui_changes(DatasetView(ref, None, None), stored)
    retagged = dataset_ui_changes(DatasetView(ref, None, None, tags=({"name": "tier:gold"},)), stored)
    # Then only the change is written, and a new dataset gets everything reported
    assert same == {} and silent == {}
    assert retagged == {"tags": [{"name": "tier:gold"}]}
    assert dataset_ui_changes(tagged, None) == stored
