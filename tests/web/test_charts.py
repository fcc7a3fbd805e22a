"""The SVG bar charts: their shape, their labels, and data that is empty or unusual."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from milepost.money import format_money
from milepost.web.charts import BarSeries, bar_chart, nice_step

SVG = "{http://www.w3.org/2000/svg}"


def _usd(value: int) -> str:
    return format_money(value, "USD")


def _draw(categories: list[str], series: list[BarSeries]) -> ET.Element:
    markup = bar_chart(
        chart_id="history-USD",
        title="Money over time <USD>",
        description="Per week & in all",
        categories=categories,
        series=series,
        format_value=_usd,
    )
    svg = ET.fromstring(str(markup))  # well-formed XML, text escaped
    for element in svg.iter():
        for name in ("x", "y", "x1", "x2", "y1", "y2", "width", "height"):
            value = element.get(name)
            if value is not None and not value.endswith("%"):
                assert math.isfinite(float(value)) and float(value) >= 0, (name, value)
    return svg


def test_one_bar_per_category_and_series_with_its_value_and_label() -> None:
    weeks = [f"{day} Nov" for day in (2, 9, 16)]
    svg = _draw(
        weeks,
        [BarSeries("Funded", [150_000, 0, 20_000]), BarSeries("Released", [0, 99_999, 1])],
    )
    assert svg.get("role") == "img" and svg.get("viewBox") == "0 0 640 300"
    assert svg.get("width") == "100%"
    assert svg.get("aria-labelledby") == "history-USD-title history-USD-desc"
    assert svg.findtext(f"{SVG}title") == "Money over time <USD>"
    assert svg.findtext(f"{SVG}desc") == "Per week & in all"
    bars = svg.findall(f"{SVG}rect[@class='bar']")
    assert len(bars) == 6
    assert [int(bar.get("data-value", "")) for bar in bars] == [150_000, 0, 0, 99_999, 20_000, 1]
    assert bars[1].findtext(f"{SVG}title") == "2 Nov: Released $0.00"
    # The tallest bar fills the plot to its top tick; a zero bar is flat; the series differ in fill.
    heights = [float(bar.get("height", "")) for bar in bars]
    assert heights[1] == 0 and max(heights) == heights[0] > heights[4] > heights[5] > 0
    assert bars[0].get("fill") != bars[1].get("fill")
    assert bars[1].get("fill") == "url(#history-USD-hatched)"
    texts = [text.text or "" for text in svg.iter(f"{SVG}text")]
    assert set(weeks) <= set(texts)  # the week axis
    twelve = _draw([f"w{n}" for n in range(12)], [BarSeries("Funded", [1] * 12)])
    labels = [t.text for t in twelve.iter(f"{SVG}text") if (t.text or "").startswith("w")]
    assert labels == [
        "w1",
        "w3",
        "w5",
        "w7",
        "w9",
        "w11",
    ]  # every other week fits, the last one kept
    assert "$0.00" in texts and "$150,000.00"[:2] in "".join(texts)
    money_labels = [t for t in texts if re.fullmatch(r"\$[0-9,]+\.[0-9]{2}", t)]
    assert money_labels[0] == "$0.00" and len(money_labels) >= 3  # the value axis, in dollars
    assert {"Funded", "Released"} <= set(texts)  # the legend


def test_empty_data_draws_an_axis_and_says_so() -> None:
    for categories, series in (
        (["2 Nov", "9 Nov"], [BarSeries("Funded", [0, 0])]),
        ([], [BarSeries("Funded", [])]),
        (["2 Nov"], []),
    ):
        svg = _draw(categories, series)
        texts = [text.text for text in svg.iter(f"{SVG}text")]
        assert "Nothing to show for these weeks." in texts
        assert len(svg.findall(f"{SVG}rect[@class='bar']")) == len(categories) * len(series)


def test_labels_are_escaped_and_bad_input_is_refused() -> None:
    svg = _draw(["<b>"], [BarSeries('"quoted" & <odd>', [5])])
    [bar] = svg.findall(f"{SVG}rect[@class='bar']")
    assert bar.get("data-series") == '"quoted" & <odd>'
    with pytest.raises(ValueError):
        bar_chart(
            chart_id='x" onload="alert(1)',
            title="t",
            description="d",
            categories=[],
            series=[],
            format_value=_usd,
        )
    with pytest.raises(ValueError):
        _draw(["a", "b"], [BarSeries("short", [1])])
    with pytest.raises(ValueError):
        _draw(["a"], [BarSeries("negative", [-1])])


@pytest.mark.parametrize("maximum", [1, 3, 7, 10, 99, 250, 1_000, 123_456, 10**12])
def test_nice_steps_cover_the_maximum_in_at_most_five_steps(maximum: int) -> None:
    step = nice_step(maximum)
    assert int(str(step).rstrip("0") or "0") in (1, 2, 5)
    assert step * 5 >= maximum and -(-maximum // step) <= 5
