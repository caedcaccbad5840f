"""Price-history charts: one line per shop over time, as inline SVG (HTML report, `history
--chart x.svg`) or as PNG drawn with Pillow (`history --chart x.png`).

Shop names are scraped text, so everything written into the SVG is XML-escaped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

from pipeline.errors import PipelineError

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")

Series = dict[str, list[tuple[str, int]]]  # shop -> [(observed_at ISO, price in minor units)]


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    left: int = 8
    right: int = 8
    top: int = 8
    bottom: int = 18

    def scale(self, series: Series):
        points = [(datetime.fromisoformat(t), p) for s in series.values() for t, p in s]
        t0 = min(t for t, _ in points)
        span = max((max(t for t, _ in points) - t0).total_seconds(), 1.0)
        low, high = min(p for _, p in points), max(p for _, p in points)
        pad = max((high - low) * 0.1, high * 0.02, 1)
        low, high = low - pad, high + pad
        plot_w = self.width - self.left - self.right
        plot_h = self.height - self.top - self.bottom

        def xy(observed_at: str, price: int) -> tuple[float, float]:
            seconds = (datetime.fromisoformat(observed_at) - t0).total_seconds()
            x = self.left + (seconds / span if len(points) > 1 else 0.5) * plot_w
            y = self.top + (high - price) / (high - low) * plot_h
            return round(x, 1), round(y, 1)

        return xy


def svg_chart(series: Series, width: int = 320, height: int = 120, label=str) -> str:
    """An SVG line chart; *label* formats a price for the tooltips and axis."""
    series = {shop: points for shop, points in series.items() if points}
    if not series:
        return ""
    layout = _Layout(width, height)
    xy = layout.scale(series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" class="chart">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]
    prices = [p for pts in series.values() for _, p in pts]
    parts.append(
        f'<text x="{width - layout.right}" y="{height - 4}" font-size="9" fill="#666" '
        f'text-anchor="end">{escape(label(min(prices)))} – {escape(label(max(prices)))}</text>'
    )
    for n, (shop, points) in enumerate(sorted(series.items())):
        colour = COLOURS[n % len(COLOURS)]
        coords = [xy(t, p) for t, p in points]
        path = " ".join(f"{x},{y}" for x, y in coords)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
        )
        for (x, y), (t, p) in zip(coords, points, strict=True):
            tip = escape(f"{shop} {t[:10]}: {label(p)}")
            parts.append(
                f'<circle cx="{x}" cy="{y}" r="2" fill="{colour}"><title>{tip}</title></circle>'
            )
        parts.append(
            f'<text x="{layout.left + 70 * n}" y="{height - 4}" font-size="9" fill="{colour}">'
            f"{escape(shop[:14])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def png_chart(series: Series, path: Path, width: int = 640, height: int = 240, label=str) -> None:
    """The same chart as a PNG file, drawn with Pillow (no plotting library needed)."""
    from PIL import Image, ImageDraw

    series = {shop: points for shop, points in series.items() if points}
    if not series:
        raise PipelineError(f"{path}: no prices to chart")
    layout = _Layout(width, height, left=12, right=12, top=16, bottom=24)
    xy = layout.scale(series)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    prices = [p for pts in series.values() for _, p in pts]
    draw.text((layout.left, 2), f"max {label(max(prices))}  min {label(min(prices))}", fill="#666")
    for n, (shop, points) in enumerate(sorted(series.items())):
        colour = COLOURS[n % len(COLOURS)]
        coords = [xy(t, p) for t, p in points]
        if len(coords) > 1:
            draw.line(coords, fill=colour, width=2)
        for x, y in coords:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
        draw.text((layout.left + 110 * n, height - 16), shop[:18], fill=colour)
    image.save(path, format="PNG")


def write_chart(series: Series, path: Path, label=str) -> Path:
    """Write *series* as PNG or SVG, chosen by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise PipelineError(f"{path}: chart file must end in .png or .svg")
    if suffix == ".svg":
        svg = svg_chart(series, 640, 240, label)
        if not svg:
            raise PipelineError(f"{path}: no prices to chart")
        path.write_text(svg, encoding="utf-8")
    else:
        png_chart(series, path, label=label)
    return path
