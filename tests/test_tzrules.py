"""polygen.tzrules: IANA zone -> Polycom tcpIpApp.sntp.* (standard offset and one DST rule)."""

from __future__ import annotations

import pytest

from polygen.tzrules import DstPoint, TimeRules, UnknownZone, rules_for, suggest_zone

SUNDAY = 1  # Polycom: 1 = Sunday … 7 = Saturday


def test_new_york_second_sunday_of_march_to_first_sunday_of_november():
    r = rules_for("America/New_York", 2026)
    assert r == TimeRules(
        "America/New_York", -5 * 3600, True, False,
        start=DstPoint(month=3, date=8, time=2, day_of_week=SUNDAY, last_in_month=False),
        stop=DstPoint(month=11, date=1, time=2, day_of_week=SUNDAY, last_in_month=False),
    )


def test_berlin_last_sunday_rules():
    r = rules_for("Europe/Berlin", 2026)
    assert (r.gmt_offset, r.dst, r.fixed_day) == (3600, True, False)
    # the hour is the wall clock before the change: 02:00 CET in March, 03:00 CEST in October
    assert r.start == DstPoint(3, 1, 2, SUNDAY, True)
    assert r.stop == DstPoint(10, 1, 3, SUNDAY, True)


def test_sydney_southern_hemisphere_starts_in_october_and_stops_in_april():
    r = rules_for("Australia/Sydney", 2026)
    assert (r.gmt_offset, r.dst, r.fixed_day) == (10 * 3600, True, False)
    assert r.start == DstPoint(10, 1, 2, SUNDAY, False)
    assert r.stop == DstPoint(4, 1, 3, SUNDAY, False)


@pytest.mark.parametrize(("zone", "offset"), [
    ("Asia/Tokyo", 9 * 3600),
    ("UTC", 0),
    ("Etc/UTC", 0),
    ("Asia/Kolkata", 19800),  # half-hour offsets survive
    ("Asia/Kathmandu", 20700),
    ("America/Phoenix", -7 * 3600),
])
def test_zones_without_dst(zone, offset):
    r = rules_for(zone, 2026)
    assert r == TimeRules(zone, offset, False)
    assert r.params() == {
        "tcpIpApp.sntp.gmtOffset": str(offset),
        "tcpIpApp.sntp.gmtOffset.overrideDHCP": "1",
        "tcpIpApp.sntp.daylightSavings.enable": "0",
    }


def test_dublin_negative_dst_is_still_gmt_in_winter():
    # tzdata models Irish summer time as standard and winter as "negative DST"; phones need GMT + 1h
    r = rules_for("Europe/Dublin", 2026)
    assert r.gmt_offset == 0
    assert (r.start, r.stop) == (DstPoint(3, 1, 1, SUNDAY, True), DstPoint(10, 1, 2, SUNDAY, True))


@pytest.mark.parametrize("zone", [
    "America/New_York", "America/Chicago", "America/Los_Angeles", "America/Halifax", "Europe/Berlin",
    "Europe/London", "Europe/Dublin", "Australia/Sydney", "Australia/Adelaide", "Pacific/Auckland",
    "Asia/Tokyo", "UTC", "America/Sao_Paulo",
])
def test_same_rules_for_two_reference_years_where_the_law_did_not_change(zone):
    a, b = rules_for(zone, 2026), rules_for(zone, 2027)
    assert a == b
    assert a.params() == b.params()


def test_params_for_a_dst_zone():
    assert rules_for("Europe/Berlin", 2026).params() == {
        "tcpIpApp.sntp.gmtOffset": "3600",
        "tcpIpApp.sntp.gmtOffset.overrideDHCP": "1",
        "tcpIpApp.sntp.daylightSavings.enable": "1",
        "tcpIpApp.sntp.daylightSavings.fixedDayEnable": "0",
        "tcpIpApp.sntp.daylightSavings.start.month": "3",
        "tcpIpApp.sntp.daylightSavings.start.date": "1",
        "tcpIpApp.sntp.daylightSavings.start.time": "2",
        "tcpIpApp.sntp.daylightSavings.start.dayOfWeek": "1",
        "tcpIpApp.sntp.daylightSavings.start.dayOfWeek.lastInMonth": "1",
        "tcpIpApp.sntp.daylightSavings.stop.month": "10",
        "tcpIpApp.sntp.daylightSavings.stop.date": "1",
        "tcpIpApp.sntp.daylightSavings.stop.time": "3",
        "tcpIpApp.sntp.daylightSavings.stop.dayOfWeek": "1",
        "tcpIpApp.sntp.daylightSavings.stop.dayOfWeek.lastInMonth": "1",
    }


def test_a_zone_that_abolished_dst_uses_the_offset_in_force_afterwards():
    # Brazil dropped DST in 2019: 2018 has two changes, 2019 one
    assert rules_for("America/Sao_Paulo", 2018) == TimeRules("America/Sao_Paulo", -3 * 3600, False)
    # Russia moved to permanent UTC+3 in October 2014
    assert rules_for("Europe/Moscow", 2014) == TimeRules("Europe/Moscow", 3 * 3600, False)


def test_yearly_moving_rules_fall_back_to_fixed_dates():
    # Morocco suspends its offset for Ramadan: no weekday rule explains two years
    r = rules_for("Africa/Casablanca", 2026)
    assert r.dst and r.fixed_day
    assert r.params()["tcpIpApp.sntp.daylightSavings.fixedDayEnable"] == "1"


@pytest.mark.parametrize("name", ["Mars/Olympus", "America/New_Yrok", "", "America", "../etc/passwd",
                                  "/etc/localtime", "UTC\x00", "zone1970.tab"])
def test_unknown_zones(name):
    with pytest.raises(UnknownZone):
        rules_for(name, 2026)


@pytest.mark.parametrize(("name", "suggestion"), [
    ("america/new_york", "America/New_York"),
    ("America/New_Yrok", "America/New_York"),
    ("Europe/Berln", "Europe/Berlin"),
    ("Mars/Olympus", None),
])
def test_suggest_zone(name, suggestion):
    assert suggest_zone(name) == suggestion
