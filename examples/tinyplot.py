"""A dependency-free line chart as PNG (zlib + struct), for when matplotlib is not installed.

Enough for the example's reward-over-time plot: axes with numbered ticks, a light grid,
solid, dashed and step lines, a title and a legend in a built-in 3x5 pixel font.

>>> png = line_chart([Series("a", [(0, 0.1), (1, 0.5), (2, 0.4)], (200, 30, 30))], title="demo")
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

Color = tuple[int, int, int]

_GLYPHS: dict[str, str] = {
    "0": "111 101 101 101 111", "1": "010 110 010 010 111", "2": "111 001 111 100 111", "3": "111 001 111 001 111",
    "4": "101 101 111 001 001", "5": "111 100 111 001 111", "6": "111 100 111 101 111", "7": "111 001 001 010 010",
    "8": "111 101 111 101 111", "9": "111 101 111 001 111", "A": "010 101 111 101 101", "B": "110 101 110 101 110",
    "C": "011 100 100 100 011", "D": "110 101 101 101 110", "E": "111 100 110 100 111", "F": "111 100 110 100 100",
    "G": "011 100 101 101 011", "H": "101 101 111 101 101", "I": "111 010 010 010 111", "J": "001 001 001 101 010",
    "K": "101 101 110 101 101", "L": "100 100 100 100 111", "M": "101 111 111 101 101", "N": "110 101 101 101 101",
    "O": "010 101 101 101 010", "P": "110 101 110 100 100", "Q": "010 101 101 110 011", "R": "110 101 110 101 101",
    "S": "011 100 010 001 110", "T": "111 010 010 010 010", "U": "101 101 101 101 111", "V": "101 101 101 101 010",
    "W": "101 101 111 111 101", "X": "101 101 010 101 101", "Y": "101 101 010 010 010", "Z": "111 001 010 100 111",
    ".": "000 000 000 000 010", "-": "000 000 111 000 000", ":": "000 010 000 010 000", "/": "001 001 010 100 100",
    "(": "010 100 100 100 010", ")": "010 001 001 001 010", "=": "000 111 000 111 000", "%": "101 001 010 100 101",
    ",": "000 000 000 010 100", "+": "000 010 111 010 000", "_": "000 000 000 000 111", ">": "100 010 001 010 100",
    "<": "001 010 100 010 001", " ": "000 000 000 000 000",
}
_UNKNOWN = "111 111 111 111 111"


@dataclass(frozen=True)
class Series:
    """One line: ``step`` draws a step function (value holds until the next point)."""

    name: str
    points: Sequence[tuple[float, float]]
    color: Color
    dashed: bool = False
    step: bool = False
    width: int = 2


class Canvas:
    """An RGB pixel buffer with just the drawing primitives a line chart needs."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def dot(self, x: int, y: int, color: Color, size: int = 1) -> None:
        half = size // 2
        for yy in range(y - half, y - half + size):
            if 0 <= yy < self.height:
                for xx in range(x - half, x - half + size):
                    if 0 <= xx < self.width:
                        i = 3 * (yy * self.width + xx)
                        self.pixels[i:i + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width: int = 1, dashed: bool = False) -> None:
        """Bresenham; dashes of 6 pixels on, 5 off."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err, n = dx + dy, 0
        while True:
            if not dashed or n % 11 < 6:
                self.dot(x0, y0, color, width)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy
            n += 1

    def text(self, x: int, y: int, text: str, color: Color, scale: int = 2) -> None:
        """Text in the 3x5 font (upper case), top-left at (x, y)."""
        for ch in text.upper():
            rows = _GLYPHS.get(ch, _UNKNOWN).split()
            for r, row in enumerate(rows):
                for c, bit in enumerate(row):
                    if bit == "1":
                        for yy in range(scale):
                            for xx in range(scale):
                                self.dot(x + c * scale + xx, y + r * scale + yy, color)
            x += 4 * scale

    def png(self) -> bytes:
        """The canvas as an 8-bit RGB PNG."""
        stride = 3 * self.width
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride:(y + 1) * stride]) for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND",
                                                                                                          b"")


def text_width(text: str, scale: int = 2) -> int:
    return 4 * scale * len(text) - scale


def nice_step(span: float, target: int = 6) -> float:
    """A 1/2/5 x 10^k tick step giving about ``target`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    width: int = 960,
    height: int = 540,
) -> bytes:
    """Render ``series`` as a PNG (bytes)."""
    canvas = Canvas(width, height)
    left, right, top, bottom = 80, 24, 48, 64
    xs = [p[0] for s in series for p in s.points] or [0.0, 1.0]
    ys = [p[1] for s in series for p in s.points] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range if y_range is not None else (min(ys), max(ys))
    if x1 <= x0:
        x1 = x0 + 1.0
    if y1 <= y0:
        y1 = y0 + 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> int:
        return left + round((x - x0) / (x1 - x0) * plot_w)

    def py(y: float) -> int:
        return top + plot_h - round((min(max(y, y0), y1) - y0) / (y1 - y0) * plot_h)

    grid, axis, ink = (225, 225, 225), (60, 60, 60), (30, 30, 30)
    y_step = nice_step(y1 - y0)
    tick = math.ceil(y0 / y_step) * y_step
    while tick <= y1 + 1e-9:
        canvas.line(left, py(tick), left + plot_w, py(tick), grid)
        label = _label(tick, y_step)
        canvas.text(left - 8 - text_width(label), py(tick) - 5, label, ink)
        tick += y_step
    x_step = nice_step(x1 - x0, 8)
    tick = math.ceil(x0 / x_step) * x_step
    while tick <= x1 + 1e-9:
        canvas.line(px(tick), top, px(tick), top + plot_h, grid)
        label = _label(tick, x_step)
        canvas.text(px(tick) - text_width(label) // 2, top + plot_h + 10, label, ink)
        tick += x_step
    canvas.line(left, top, left, top + plot_h, axis, 2)
    canvas.line(left, top + plot_h, left + plot_w, top + plot_h, axis, 2)

    for s in series:
        pts = sorted(s.points)
        if s.step:
            stepped: list[tuple[float, float]] = []
            for i, (x, y) in enumerate(pts):
                stepped.append((x, y))
                nxt = pts[i + 1][0] if i + 1 < len(pts) else x1
                stepped.append((nxt, y))
            pts = stepped
        for (ax, ay), (bx, by) in zip(pts, pts[1:], strict=False):
            canvas.line(px(ax), py(ay), px(bx), py(by), s.color, s.width, s.dashed)
        if len(pts) == 1:
            canvas.dot(px(pts[0][0]), py(pts[0][1]), s.color, 4)

    canvas.text((width - text_width(title, 3)) // 2, 12, title, ink, 3)
    canvas.text(left + (plot_w - text_width(x_label)) // 2, height - 28, x_label, ink)
    canvas.text(8, 24, y_label, ink)
    ly = top + 10
    for s in series:
        canvas.line(left + 14, ly + 4, left + 40, ly + 4, s.color, 3, s.dashed)
        canvas.text(left + 48, ly, s.name, ink)
        ly += 18
    return canvas.png()


def write_line_chart(path: str | Path, series: Sequence[Series], **kwargs: object) -> Path:
    """``line_chart`` written to ``path``."""
    out = Path(path)
    out.write_bytes(line_chart(series, **kwargs))  # type: ignore[arg-type]
    return out
