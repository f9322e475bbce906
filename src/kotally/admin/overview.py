"""The overview page's figures and its chart (an inline SVG, drawn here, no script needed)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from markupsafe import Markup
from sqlalchemy.orm import Session

from kotally.admin import read_repository as repo
from kotally.admin.web import tz_of
from kotally.db.models import Location

DAYS = 30
# What the chart shows of each ledger kind, and the sign that makes it positive.
SERIES = (
    ("grant", "Granted", 1),
    ("deduct", "Used", -1),
    ("restore", "Restored", 1),
    ("expire", "Expired", -1),
)
CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 300, 64, 2


@dataclass(frozen=True)
class Series:
    label: str
    total: int
    days: list[tuple[date, int]]
    svg: Markup


def counts(session: Session, location: Location, now: datetime) -> repo.LocationCounts:
    return repo.counts(session, location.id, now)


def chart(session: Session, location: Location, now: datetime) -> list[Series]:
    zone = tz_of(location.timezone)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=DAYS - 1)
    since = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    per_day: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for kind, hour, amount in repo.movements_by_hour(session, location.id, since):
        at = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(zone)
        per_day[kind][at.date()] += amount
    days = [first + timedelta(days=i) for i in range(DAYS)]
    out = []
    for kind, label, sign in SERIES:
        values = [(d, sign * per_day[kind].get(d, 0)) for d in days]
        out.append(Series(label, sum(v for _, v in values), values, _bars(label, values)))
    return out


def _bars(label: str, values: list[tuple[date, int]]) -> Markup:
    top = max((v for _, v in values), default=0) or 1
    width = CHART_WIDTH / len(values)
    bars = []
    for i, (day, value) in enumerate(values):
        height = 0 if value <= 0 else max(2.0, CHART_HEIGHT * value / top)
        x = i * width
        bars.append(
            Markup(
                '<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" rx="1.5" class="{}">'
                "<title>{}: {:,}</title></rect>"
            ).format(
                x + BAR_GAP / 2,
                CHART_HEIGHT - height,
                width - BAR_GAP,
                height,
                "bar" if value > 0 else "bar-empty",
                day.strftime("%b %-d"),
                value,
            )
        )
        if value <= 0:
            bars[-1] = Markup(
                '<rect x="{:.1f}" y="{}" width="{:.1f}" height="2" rx="1" class="bar-empty">'
                "<title>{}: 0</title></rect>"
            ).format(x + BAR_GAP / 2, CHART_HEIGHT - 2, width - BAR_GAP, day.strftime("%b %-d"))
    return Markup(
        '<svg viewBox="0 0 {} {}" preserveAspectRatio="none" class="spark" role="img" '
        'aria-label="{} per day, last {} days">{}</svg>'
    ).format(CHART_WIDTH, CHART_HEIGHT, label, DAYS, Markup("").join(bars))
