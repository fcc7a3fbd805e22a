"""Server-rendered SVG bar charts: data in, markup out, no JavaScript and no chart library.

The SVG scales to its container (viewBox, width 100%). Screen readers get a title and a description
(role="img"); each bar also carries a <title> with its figure. Series differ in colour and in fill pattern
(solid, hatched, dotted), so they stay apart in greyscale and for colour-blind readers; the page shows the
same figures as a table next to the chart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 300
LEFT = 96  # room for the value axis labels ("$10,000.00")
RIGHT = 8
TOP = 12
PLOT_BOTTOM = 224
LEGEND_Y = 268
MAX_CATEGORY_LABELS = 7

# Okabe-Ito colours (colour-blind safe), each with a pattern and a light background for the pattern.
STYLES = (
    ("solid", "#0072b2", "#0072b2"),
    ("hatched", "#d55e00", "#fbe1d1"),
    ("dotted", "#009e73", "#d2f0e6"),
)


@dataclass(frozen=True)
class BarSeries:
    label: str
    values: Sequence[int]  # one per category, minor units; never negative


def nice_step(maximum: int, ticks: int = 4) -> int:
    """A step of 1, 2 or 5 times a power of ten so that about ``ticks`` steps cover ``maximum``."""
    raw = max(1, -(-maximum // ticks))
    magnitude: int = 10 ** (len(str(raw)) - 1)
    multiple = next(m for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return multiple * magnitude


def _fill(chart_id: str, index: int) -> str:
    pattern, colour, _ = STYLES[index % len(STYLES)]
    return colour if pattern == "solid" else f"url(#{chart_id}-{pattern})"


def _patterns(chart_id: str) -> str:
    _, hatch, hatch_bg = STYLES[1]
    _, dots, dots_bg = STYLES[2]
    return (
        f'<defs><pattern id="{chart_id}-hatched" width="6" height="6" patternUnits="userSpaceOnUse"'
        f' patternTransform="rotate(45)"><rect width="6" height="6" fill="{hatch_bg}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{hatch}" stroke-width="3"/></pattern>'
        f'<pattern id="{chart_id}-dotted" width="5" height="5" patternUnits="userSpaceOnUse">'
        f'<rect width="5" height="5" fill="{dots_bg}"/>'
        f'<circle cx="2.5" cy="2.5" r="1.6" fill="{dots}"/></pattern></defs>'
    )


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[BarSeries],
    format_value: Callable[[int], str],
    empty_note: str = "Nothing to show for these weeks.",
) -> Markup:
    """Grouped bars: one group per category, one bar per series (every bar drawn, zero ones flat, so the
    count is always categories x series). Text is escaped; ``chart_id`` must be a plain identifier."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", chart_id):
        raise ValueError(f"not a usable id: {chart_id!r}")
    if any(len(s.values) != len(categories) for s in series):
        raise ValueError("every series needs one value per category")
    if any(v < 0 for s in series for v in s.values):
        raise ValueError("bar values must not be negative")
    maximum = max((v for s in series for v in s.values), default=0)
    step = nice_step(maximum) if maximum else 0
    top = step * -(-maximum // step) if step else 0
    plot_height = PLOT_BOTTOM - TOP
    plot_width = WIDTH - LEFT - RIGHT

    def y(value: int) -> float:
        return PLOT_BOTTOM - (value * plot_height / top if top else 0)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="100%" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc"'
        f' id="{chart_id}">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        _patterns(chart_id),
    ]
    # Value axis: gridlines with money labels.
    ticks = range(0, top + 1, step) if step else range(1)
    for tick in ticks:
        ty = f"{y(tick):.1f}"
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{ty}" x2="{WIDTH - RIGHT}" y2="{ty}"/>'
            f'<text class="axis-label" x="{LEFT - 6}" y="{ty}" text-anchor="end"'
            f' dominant-baseline="middle">{escape(format_value(tick))}</text>'
        )
    group = plot_width / len(categories) if categories else plot_width
    bar = group * 0.8 / max(1, len(series))
    label_every = -(-len(categories) // MAX_CATEGORY_LABELS) or 1
    for position, category in enumerate(categories):
        left = LEFT + position * group + group * 0.1
        for index, each in enumerate(series):
            value = each.values[position]
            # A tiny amount beside a large one still shows as a sliver, not as nothing.
            height = max(PLOT_BOTTOM - y(value), 1.0) if value else 0.0
            parts.append(
                f'<rect class="bar" x="{left + index * bar:.1f}" y="{PLOT_BOTTOM - height:.1f}"'
                f' width="{bar:.1f}" height="{height:.1f}"'
                f' fill="{_fill(chart_id, index)}" stroke="{STYLES[index % len(STYLES)][1]}"'
                f' data-series="{escape(each.label)}" data-value="{value}">'
                f"<title>{escape(category)}: {escape(each.label)} "
                f"{escape(format_value(value))}</title></rect>"
            )
        # At most about seven labels fit under the bars; count from the newest so that it is labelled.
        if (len(categories) - 1 - position) % label_every == 0:
            parts.append(
                f'<text class="axis-label" x="{LEFT + position * group + group / 2:.1f}"'
                f' y="{PLOT_BOTTOM + 18}" text-anchor="middle">{escape(category)}</text>'
            )
    parts.append(
        f'<line class="axis" x1="{LEFT}" y1="{PLOT_BOTTOM}" x2="{WIDTH - RIGHT}" y2="{PLOT_BOTTOM}"/>'
    )
    if not maximum:
        parts.append(
            f'<text class="empty-note" x="{LEFT + plot_width / 2:.1f}" y="{TOP + plot_height / 2:.1f}"'
            f' text-anchor="middle">{escape(empty_note)}</text>'
        )
    # Legend: a swatch with the series' own fill, then its name.
    legend_x = 8.0
    for index, each in enumerate(series):
        parts.append(
            f'<g class="legend-item"><rect x="{legend_x:.1f}" y="{LEGEND_Y - 12}" width="14"'
            f' height="14" fill="{_fill(chart_id, index)}" stroke="{STYLES[index % len(STYLES)][1]}"/>'
            f'<text class="legend-label" x="{legend_x + 20:.1f}" y="{LEGEND_Y}">'
            f"{escape(each.label)}</text></g>"
        )
        legend_x += 20 + 7 * len(each.label) + 24
    parts.append("</svg>")
    return Markup("".join(parts))
