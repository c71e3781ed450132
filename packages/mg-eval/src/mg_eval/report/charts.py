"""Charts: each drawn once with matplotlib on an Agg canvas (no display, no pyplot state), then emitted as
an inline SVG for the page and a PNG for pasting into chats."""

from __future__ import annotations

import io
import math
import re
import warnings
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mg_eval.report.content import ChartSpec

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # the rcParams names (matplotlib >= 3.10)

FIGSIZE = (5.6, 3.3)  # inches; the SVG scales to its grid cell, the PNG is this at PNG_DPI
PNG_DPI = 150
DRAW_BUCKETS = 800  # longer curves are drawn as a min/max envelope of this many slices
HOVER_POINTS = 2000  # per series, embedded for the hover read-out
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)


@dataclass(frozen=True)
class Chart:
    spec: ChartSpec
    svg: str  # an inline <svg> element, ids prefixed so that several can share a page
    png: bytes
    hover: dict  # plot area in SVG user units, x limits and (downsampled) series, for the page's read-out

    @property
    def filename(self) -> str:
        return safe_filename(f"{self.spec.split}_{self.spec.name}") + ".png"


def safe_filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "chart"


def ema_weight(n: int) -> float:
    """Light smoothing relative to the curve's length: an EMA spanning about 1% of its points, never less
    than TensorBoard's default 0.6 (short runs) and at most 0.995 (very long ones)."""
    span = n / 100
    return round(min(0.995, max(0.6, 1 - 2 / (span + 1))), 3)


def ema(values: list[float], weight: float) -> list[float]:
    """Debiased exponential moving average (as TensorBoard draws it): the start is not dragged to 0."""
    out, acc, n = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        n += 1
        acc = acc * weight + (1 - weight) * v
        out.append(acc / (1 - weight**n))
    return out


def decimate(steps: list[int], values: list[float], buckets: int = DRAW_BUCKETS) -> tuple[list, list]:
    """Long curves -> the min and max of each of `buckets` slices, in order: the same picture (spikes kept)
    at a fraction of the SVG size."""
    n = len(steps)
    if n <= 2 * buckets:
        return steps, values
    keep: list[int] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        chunk = range(lo, hi)
        finite = [i for i in chunk if math.isfinite(values[i])] or [lo]
        i_min = min(finite, key=values.__getitem__)
        i_max = max(finite, key=values.__getitem__)
        keep.extend(sorted({i_min, i_max}))
    return [steps[i] for i in keep], [values[i] for i in keep]


@lru_cache(maxsize=2)
def font_family(cjk: bool = False) -> tuple[str, ...]:
    """DejaVu Sans, then (for labels with CJK text) any CJK font installed, so that a Chinese run name in a
    PNG legend is not boxes. matplotlib's font cache predates fonts installed after it: look for those too."""
    if not cjk:
        return ("DejaVu Sans",)
    manager = font_manager.fontManager
    if not any(f.name in CJK_FONTS for f in manager.ttflist):
        for path in font_manager.findSystemFonts():
            if re.search(r"wqy|cjk|sourcehan|droidsansfallback|uming|ukai", Path(path).name, re.I):
                with suppress(Exception):  # an unreadable font file is no reason to fail a report
                    manager.addfont(path)
    installed = {f.name for f in manager.ttflist}
    return ("DejaVu Sans", *(name for name in CJK_FONTS if name in installed))


def has_cjk(text: str) -> bool:
    return any(ord(ch) >= 0x2E80 for ch in text)


def render(spec: ChartSpec, prefix: str) -> Chart:
    rc: dict[RcKeyType, Any] = {
        "svg.fonttype": "none",
        "svg.hashsalt": prefix,
        "font.family": list(font_family(any(has_cjk(x.run) for x in spec.series))),
        "font.size": 9.5,
    }
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from font")
        fig = draw(spec)
        svg_buf, png_buf = io.StringIO(), io.BytesIO()
        fig.savefig(svg_buf, format="svg", metadata={"Date": None})
        hover = hover_data(fig, spec)  # the plot area as laid out for the SVG
        fig.savefig(png_buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    svg = inline_svg(svg_buf.getvalue(), prefix, spec.key)
    return Chart(spec=spec, svg=svg, png=png_buf.getvalue(), hover=hover)


def draw(spec: ChartSpec) -> Figure:
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas, explicitly: never a GUI backend, whatever MPLBACKEND says
    ax = fig.add_subplot()
    weight = ema_weight(max(len(s.steps) for s in spec.series))
    for s in spec.series:
        if spec.smooth:
            ax.plot(*decimate(s.steps, s.values), color=s.color, alpha=0.22, linewidth=1)
            ax.plot(*decimate(s.steps, ema(s.values, weight)), color=s.color, linewidth=1.8, label=s.run)
        else:
            few = len(s.steps) <= 25
            marker: dict[str, Any] = (
                {"marker": "o", "markersize": 6 if len(s.steps) == 1 else 3.5} if few else {}
            )
            ax.plot(*decimate(s.steps, s.values), color=s.color, linewidth=1.6, label=s.run, **marker)
    ax.set_title(spec.key, loc="left", fontsize=11, fontweight="bold", fontfamily="DejaVu Sans")
    if spec.smooth:
        ax.set_title(f"EMA {weight:g}, raw faint", loc="right", fontsize=8, color="#777777")
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    legend = ax.legend(fontsize=8.5, framealpha=0.85, edgecolor="#dddddd", loc="best")
    legend.set_gid("legend")
    return fig


def inline_svg(svg: str, prefix: str, label: str) -> str:
    """matplotlib's SVG document -> an <svg> element for an HTML page: no XML prolog, metadata or namespace
    URLs (the HTML parser knows svg and xlink:href), ids made unique per chart, size set by CSS."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", svg)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(
        r'(href="#|url\(#)([^")]+)',
        lambda m: f"{m.group(1)}{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(0),
        svg,
    )
    end = svg.index(">")
    head = re.sub(r'\s(?:width|height|version)="[^"]*"', "", svg[:end])
    label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return (
        f'{head} class="plot" role="img" aria-label="{label}" preserveAspectRatio="xMidYMid meet"{svg[end:]}'
    )


def hover_data(fig: Figure, spec: ChartSpec) -> dict:
    ax = fig.axes[0]
    width, height = fig.get_figwidth() * 72, fig.get_figheight() * 72  # SVG user units are points
    pos = ax.get_position()  # final after the save ran the constrained layout
    series = []
    for s in spec.series:
        stride = max(1, math.ceil(len(s.steps) / HOVER_POINTS))
        idx = list(range(0, len(s.steps), stride))
        if idx[-1] != len(s.steps) - 1:
            idx.append(len(s.steps) - 1)
        series.append(
            {
                "run": s.run,
                "color": s.color,
                "steps": [s.steps[i] for i in idx],
                "values": [s.values[i] if math.isfinite(s.values[i]) else None for i in idx],
            }
        )
    return {
        "box": [
            round(pos.x0 * width, 2),
            round((1 - pos.y1) * height, 2),
            round(pos.x1 * width, 2),
            round((1 - pos.y0) * height, 2),
        ],
        "xlim": list(ax.get_xlim()),
        "series": series,
    }
