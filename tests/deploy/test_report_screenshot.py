"""The HTML report in a real browser: headless Chromium screenshots it and the charts' pixels are there."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from cli_helpers import clean_environ

from memabrad.report import build_histories, render_report
from memabrad.report.html import COLORS

from .conftest import HistoryStore
from .helpers import count_non_white, count_pixels, hex_rgb, read_png, require_tool

WIDTH, HEIGHT = 1200, 1600


def screenshot(page: Path, png: Path, profile: Path) -> np.ndarray:
    chromium = require_tool("chromium", "apt-get install chromium; .ci/run installs it")
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
            f"--window-size={WIDTH},{HEIGHT}", page.as_uri()]
    res = subprocess.run(args, capture_output=True, text=True, timeout=90, env=clean_environ(HOME=str(profile)),
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and png.is_file(), res.stdout[-2000:] + res.stderr[-2000:]
    return read_png(png)


def test_charts_render_in_chromium(history_store: HistoryStore, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report(build_histories(history_store.base), base_dir=str(history_store.base)),
                    encoding="utf-8")
    pixels = screenshot(page, tmp_path / "report.png", tmp_path / "profile")
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert count_non_white(pixels) > 0.08 * WIDTH * HEIGHT, "the page looks blank"

    # The baseline (blue) and challenger (orange) series: lines, interval whiskers and points.
    for role in ("baseline", "challenger"):
        color = np.array(hex_rgb(COLORS[role]), dtype=np.int16)
        mask = (np.abs(pixels.astype(np.int16) - color) <= 24).all(axis=2)
        ys, xs = np.nonzero(mask)
        assert len(xs) > 400, f"too few {role} pixels ({len(xs)}): the reward chart did not render"
        # two evaluations sit at 1/4 and 3/4 of the chart: the series spans a good part of the page width
        assert xs.max() - xs.min() > 0.35 * WIDTH, f"{role} series spans only {xs.max() - xs.min()} px"
    # Passing gates are green squares in the gate charts, promotions green marks.
    assert count_pixels(pixels, hex_rgb(COLORS["pass"])) > 300
    # The rollback marker (dark red dashed line) crosses the reward chart.
    assert count_pixels(pixels, hex_rgb(COLORS["rollback"]), tolerance=30) > 100


def test_a_page_without_charts_is_much_emptier(history_store: HistoryStore, tmp_path: Path) -> None:
    """Control: the same page with its SVG charts removed has far fewer chart-coloured pixels."""
    html = render_report(build_histories(history_store.base))
    start, end = html.index("<svg"), html.rindex("</svg>") + len("</svg>")
    page = tmp_path / "blank.html"
    page.write_text(html[:start] + html[end:], encoding="utf-8")
    pixels = screenshot(page, tmp_path / "blank.png", tmp_path / "profile")
    assert count_pixels(pixels, hex_rgb(COLORS["challenger"])) < 400  # only the legend swatch
