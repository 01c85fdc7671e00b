"""Relative time expressions resolved against the date a turn was said."""

from __future__ import annotations

import pytest

from lmm.text import timeref

SAID = "2023-05-08T13:56:00.000Z"  # a Monday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I fixed it yesterday.", "I fixed it yesterday [7 May 2023]."),
        ("We shipped it today", "We shipped it today [8 May 2023]"),
        ("Demo tomorrow!", "Demo tomorrow [9 May 2023]!"),
        ("the day before yesterday", "the day before yesterday [6 May 2023]"),
        ("We moved last week", "We moved last week [the week before 8 May 2023]"),
        ("Last weekend was fun", "Last weekend [the weekend before 8 May 2023] was fun"),
        ("won it last Saturday", "won it last Saturday [the Saturday before 8 May 2023]"),
        ("next Friday then", "next Friday [the Friday after 8 May 2023] then"),
        ("started last month", "started last month [April 2023]"),
        ("due next month", "due next month [June 2023]"),
        ("since last year", "since last year [2022]"),
        ("two weeks ago", "two weeks ago [two weeks before 8 May 2023]"),
        ("3 days ago", "3 days ago [5 May 2023]"),
        ("4 years ago", "4 years ago [2019]"),
        ("a few days ago", "a few days ago [a few days before 8 May 2023]"),
        ("in 2 months", "in 2 months [July 2023]"),
        ("last summer", "last summer [summer 2022]"),
        ("next summer", "next summer [summer 2023]"),
        ("last winter", "last winter [the winter before 8 May 2023]"),
        ("recently, soon", "recently, soon"),
    ],
)
def test_annotate_resolves_against_the_turns_date(text: str, expected: str) -> None:
    assert timeref.annotate(text, SAID) == expected


def test_month_arithmetic_crosses_years() -> None:
    assert timeref.annotate("last month", "2023-01-15") == "last month [December 2022]"
    assert timeref.annotate("next month", "2023-12-02") == "next month [January 2024]"


def test_last_season_after_it_ended_is_this_years() -> None:
    assert timeref.annotate("last summer", "2023-10-01") == "last summer [summer 2023]"


def test_without_a_readable_timestamp_the_text_is_unchanged() -> None:
    assert timeref.annotate("yesterday", None) == "yesterday"
    assert timeref.annotate("yesterday", "soon") == "yesterday"


def test_overlapping_expressions_resolve_once() -> None:
    assert timeref.resolve("the day before yesterday", timeref.date(2023, 5, 8)) == [
        (0, 24, "6 May 2023")
    ]


def test_human_date_reads_iso_timestamps() -> None:
    assert timeref.human_date("2023-05-08T13:56:00.000Z") == "8 May 2023"
    assert timeref.human_date("2023-13-40 garbage") == "2023-13-40"


def test_parse_since_accepts_dates_and_plain_spans_and_refuses_the_rest() -> None:
    from datetime import date

    import pytest

    from lmm.errors import LmmError
    from lmm.text.timeref import parse_since

    now = date(2026, 3, 10)
    assert parse_since("2026-01-31", now) == "2026-01-31"
    assert parse_since("yesterday", now) == "2026-03-09"
    assert parse_since("7d", now) == "2026-03-03"
    assert parse_since("2 weeks ago", now) == "2026-02-24"
    for bad in ("last tuesday", "2026-13-01", "soon", ""):
        with pytest.raises(LmmError, match="is not a date"):
            parse_since(bad, now)
