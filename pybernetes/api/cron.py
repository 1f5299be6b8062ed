"""Cron schedules of CronJobs: parse (standard 5-field syntax and the @hourly-style descriptors, as
Kubernetes' robfig/cron ParseStandard) and find schedule times, in an IANA time zone.

Callers: the apiserver validates `spec.schedule`/`spec.timeZone` with `schedule_errors`/`time_zone_errors`;
the CronJob controller finds the most recent missed time and the next one with `Schedule`. The parser is
croniter; this module only pins the syntax Kubernetes accepts and converts to and from epoch seconds.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from croniter import CroniterError, croniter

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


def _expression(schedule: str) -> str:
    """The 5-field expression of a schedule; ValueError with robfig/cron's wording when it is not one."""
    text = schedule.strip()
    if text.startswith("@"):
        if text in _DESCRIPTORS:
            return _DESCRIPTORS[text]
        raise ValueError(f"unrecognized descriptor: {text}")
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    try:
        croniter(text)
    except (CroniterError, ValueError, KeyError) as e:
        raise ValueError(str(e) or f"invalid schedule: {text}") from None
    return text


def schedule_errors(schedule: str) -> list[str]:
    """Why a schedule does not parse (empty when it does)."""
    try:
        _expression(schedule)
    except ValueError as e:
        return [str(e)]
    return []


def time_zone_errors(tz: str) -> list[str]:
    """validateTimeZone: an explicit IANA name (not Local) that the tz database knows."""
    if not tz:
        return ["timeZone must be nil or non-empty string"]
    if tz.lower() == "local":
        return ["timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"]
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [f"unknown time zone {tz}"]
    return []


class Schedule:
    """A parsed schedule in a time zone (UTC when none is given); times are epoch seconds."""

    def __init__(self, schedule: str, tz: str = "") -> None:
        self.expression = _expression(schedule)
        self.tz: dt.tzinfo = zoneinfo.ZoneInfo(tz) if tz else dt.UTC

    def next_after(self, t: float) -> float:
        """The first schedule time strictly after t."""
        start = dt.datetime.fromtimestamp(t, self.tz)
        nxt = croniter(self.expression, start).get_next(dt.datetime)
        return nxt.timestamp()

    def most_recent(self, earliest: float, now: float, limit: int = 100) -> tuple[float | None, int]:
        """The latest schedule time in (earliest, now] and how many there were (counting stops past `limit`,
        Kubernetes' "too many missed start times")."""
        latest: float | None = None
        missed = 0
        t = self.next_after(earliest)
        while t <= now:
            latest, missed = t, missed + 1
            if missed > limit:
                # Jump straight to the last time at or before now instead of walking every missed one
                # (schedules have minute granularity, so one second past now is still the same minute).
                start = dt.datetime.fromtimestamp(now + 1, self.tz)
                latest = croniter(self.expression, start).get_prev(dt.datetime).timestamp()
                break
            t = self.next_after(t)
        return latest, missed
