"""mg_eval.report: the HTML page and PNGs from real run logs, checked as text and in a real browser."""

from __future__ import annotations

import json
import math
import random
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import browser
import pytest

from mg_eval.report import NotARunError, write_report
from mg_eval.report.charts import decimate, ema, ema_weight
from mg_eval.runlog import RunLogger

STEPS = 50
EXPECTED_CHARTS = [
    "train/loss",
    "train/learning_rate",
    "train/grad_norm",
    "eval/loss",
    "eval/accuracy",
    "eval/f1_macro",
    "test/bleu",
    "test/rouge_l",
]
SAMPLES = [
    {
        "segments": [
            {"text": "<|user|>\n把这句话翻译成英文：今天天气很好。\n<|assistant|>\n", "trained": False},
            {"text": "The weather is nice today.", "trained": True},
        ],
        "label": "翻译",
    },
    {
        "segments": [
            {"text": "Q: is 1 < 2 && 3 > 2? <script>alert('x')</script>\nA: ", "trained": False},
            {"text": "yes & <b>true</b>", "trained": True},
        ],
        "label": "logic",
    },
    {"segments": [{"text": "你好，世界！", "trained": True}]},
]


def make_run(path: Path, *, name: str, lr: float, seed: int, noise: float) -> Path:
    rng = random.Random(seed)
    config = {
        "run_name": name,
        "seed": seed,
        "model": {"name": "tiny-gpt", "layers": 2, "hidden": 64},
        "optim": {"lr": lr, "warmup_steps": 5, "schedule": "cosine"},
        "data": {"path": "data/zh_mix.jsonl"},
    }
    with RunLogger(path, config=config, tensorboard=False) as log:
        for step in range(1, STEPS + 1):
            warm = min(1.0, step / 5)
            sched = lr * warm * 0.5 * (1 + math.cos(math.pi * step / STEPS))
            loss = 0.6 + 2.4 * math.exp(-step * lr * 60) + rng.gauss(0, noise)
            log.log(
                step,
                {"loss": loss, "learning_rate": sched, "grad_norm": abs(rng.gauss(1.5, 0.4))},
                epoch=step / STEPS,
            )
            if step % 10 == 0:
                acc = 0.5 + 0.4 * (1 - math.exp(-step * lr * 40))
                log.log(step, {"loss": loss + 0.1, "accuracy": acc, "f1_macro": acc - 0.05}, split="eval")
        log.log(STEPS, {"bleu": 20 + lr * 1e4, "rouge_l": 0.3 + lr * 100}, split="test")
        log.log_samples(SAMPLES, split="train", step=0)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    return [
        make_run(root / "run_a", name="baseline", lr=1e-3, seed=0, noise=0.15),
        make_run(root / "run_b", name="lr-3e-4", lr=3e-4, seed=1, noise=0.15),
    ]


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> Path:
    return write_report(runs, tmp_path_factory.mktemp("out") / "report.html")


@pytest.fixture(scope="module")
def page(report) -> str:
    return report.read_text(encoding="utf-8")


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text under each <svg> chart's legend."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.legends: dict[str, list[str]] = {}
        self._chart: str | None = None
        self._legend_depth = 0
        self._depth = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "figure" and "chart" in attrs.get("class", ""):
            self._chart = attrs["data-key"]
            self.legends[self._chart] = []
        if tag == "g":
            self._depth += 1
            if (attrs.get("id") or "").endswith("-legend"):
                self._legend_depth = self._depth

    def handle_endtag(self, tag):
        if tag == "g":
            if self._depth == self._legend_depth:
                self._legend_depth = 0
            self._depth -= 1

    def handle_data(self, data):
        if self._legend_depth and self._chart and data.strip():
            self.legends[self._chart].append(data.strip())


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# --- the page as text ---------------------------------------------------------------------------------------


def test_page_is_self_contained(page):
    elements = Elements(page)
    for tag, attrs in elements.tags:
        assert tag != "link", "no stylesheet or icon links: everything is inline"
        assert "src" not in attrs, f"<{tag} src=...>: an external reference"
        href = attrs.get("href") or attrs.get("xlink:href") or ""
        assert href == "" or href.startswith("#"), f"<{tag} href={href!r}>: only in-page anchors"
    # The inputs hold no URL, so neither may the page (no CDN, no namespace or metadata URLs either).
    assert "http://" not in page and "https://" not in page
    assert "url(" not in page.replace("url(#", "")
    assert "Content-Security-Policy" in page


def test_one_svg_per_chart_in_order(page):
    keys = re.findall(r'<figure class="chart"[^>]*data-key="([^"]+)"', page)
    assert keys == EXPECTED_CHARTS
    assert page.count("<svg") == len(EXPECTED_CHARTS)
    ids = [attrs["id"] for _, attrs in Elements(page).tags if "id" in attrs]
    assert len(ids) == len(set(ids)), "ids repeat across the inline SVGs"


def test_every_chart_overlays_both_runs_with_a_legend(page):
    legends = Elements(page).legends
    assert sorted(legends) == sorted(EXPECTED_CHARTS)
    for key, texts in legends.items():
        assert texts == ["baseline", "lr-3e-4"], key
    colours = ["#1f77b4", "#ff7f0e"]
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        assert all(c in svg for c in colours)


def test_run_names_config_and_differing_keys_first(page, runs):
    for name in ["baseline", "lr-3e-4", str(runs[0]), "tiny-gpt", "data/zh_mix.jsonl", "0.0003"]:
        assert name in page
    config = page[page.index('<section id="config">') :]
    keys = re.findall(r'<td class="key">([^<]+)</td>', config)
    differing = {"run_name", "seed", "optim.lr"}
    assert set(keys[:3]) == differing, keys
    assert "3 keys differ between runs" in config and "Same in all runs" in config
    assert re.search(r'<tr class="diff"><td class="key">optim.lr</td>', config)


def test_samples_are_escaped_with_trained_spans_marked(page):
    samples = page[page.index('<section id="samples">') : page.index('<section id="config">')]
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in samples
    assert '<span class="seg trained">yes &amp; &lt;b&gt;true&lt;/b&gt;</span>' in samples
    assert '<span class="seg trained">The weather is nice today.</span>' in samples
    assert (
        '<span class="seg ctx">&lt;|user|&gt;\n把这句话翻译成英文：今天天气很好。\n&lt;|assistant|&gt;\n</span>'
        in samples
    )
    assert '<span class="seg trained">你好，世界！</span>' in samples
    assert "trained on" in samples and "label: <b>翻译</b>" in samples
    # Both runs logged the same samples: shown once, for both.
    assert samples.count("把这句话") == 1 and "baseline" in samples and "lr-3e-4" in samples


def test_final_metrics_table(page):
    final = page[page.index('<section id="final">') : page.index('<section id="samples">')]
    rows = re.findall(r'<td class="key">([^<]+)</td>', final)
    assert rows[:2] == ["bleu", "rouge_l"], "downstream metrics lead the table"
    assert rows[-3:] == ["loss", "learning_rate", "grad_norm"], "train metrics close it"
    assert ">30<" in final and ">23<" in final  # bleu = 20 + lr * 1e4 for each run
    assert re.search(r'<td class="num best" title="step 50">30</td>', final), "the higher bleu is marked best"


def test_pngs_of_the_main_curves(report):
    folder = report.with_name("report_png")
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(k.replace("/", "_") + ".png" for k in EXPECTED_CHARTS)
    for png in folder.iterdir():
        width, height = png_size(png)
        assert width > 400 and height > 200 and png.stat().st_size > 5000


def test_png_dir_title_and_atomic_rewrite(runs, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("old")
    assert write_report(runs[:1], out, png_dir=tmp_path / "pngs", title="My <run>") == out
    text = out.read_text(encoding="utf-8")
    assert "<title>My &lt;run&gt;</title>" in text and text.count("<svg") == len(EXPECTED_CHARTS)
    assert (tmp_path / "pngs" / "train_loss.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pngs", "r.html"], "no temp files left behind"


def test_a_directory_that_is_not_a_run(tmp_path, runs):
    (tmp_path / "not_a_run").mkdir()
    with pytest.raises(NotARunError, match=re.escape(str(tmp_path / "not_a_run"))):
        write_report([runs[0], tmp_path / "not_a_run"], tmp_path / "r.html")
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        write_report([tmp_path / "missing"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_an_empty_run_still_renders(tmp_path):
    RunLogger(tmp_path / "fresh", config={"lr": 0.1}, tensorboard=False).close()
    out = write_report([tmp_path / "fresh"], tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    assert "No metrics logged yet" in text and "no metrics yet" in text
    assert "<svg" not in text and "lr" in text
    assert list((tmp_path / "r_png").iterdir()) == []


def test_ema_is_debiased_and_smooths():
    assert ema([3.0, 3.0, 3.0], 0.6) == pytest.approx([3.0, 3.0, 3.0])
    rng = random.Random(0)
    noisy = [1 + rng.gauss(0, 0.3) for _ in range(200)]
    smooth = ema(noisy, 0.6)

    def spread(xs):
        return sum(abs(a - b) for a, b in zip(xs, xs[1:], strict=False))

    assert spread(smooth) < spread(noisy) / 2
    # Light: TensorBoard's 0.6 for a short run, a span of ~1% of the points for a long one.
    assert ema_weight(50) == 0.6 and 0.98 < ema_weight(20_000) < 0.995


def test_long_curves_are_drawn_as_an_envelope(tmp_path):
    rng = random.Random(0)
    with RunLogger(tmp_path / "long", config={"run_name": "长跑"}, tensorboard=False) as log:
        for step in range(20_000):
            log.log(step, {"loss": 2 + rng.gauss(0, 0.3)})
    out = write_report([tmp_path / "long"], tmp_path / "r.html")
    assert out.stat().st_size < 400_000, "20k noisy points must not make a 20k-vertex SVG path"
    steps, values = decimate(list(range(20_000)), [float(v % 7) for v in range(20_000)])
    assert len(steps) <= 2 * 800 and steps == sorted(steps) and max(values) == 6 and min(values) == 0


# --- the page in a real browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    problem = browser.ensure_chromium()
    if problem:
        pytest.fail(f"headless Chromium is needed for the report's browser test: {problem}", pytrace=False)
    return browser.CHROMIUM


GLYPHS_DIFFER = """() => {
  // Tofu (a missing glyph) draws the same box for every character: two CJK characters must differ.
  const font = getComputedStyle(document.querySelector('pre.text')).font;
  const draw = (ch) => { const c = document.createElement('canvas'); c.width = c.height = 40;
    const g = c.getContext('2d'); g.font = font.replace(/\\d+(\\.\\d+)?px/, '32px'); g.fillText(ch, 2, 32);
    return c.toDataURL(); };
  return draw('世') !== draw('界');
}"""


@pytest.mark.browser
def test_report_in_headless_chromium(report, chromium):
    with browser.open_page(report.as_uri()) as (page, problems):
        charts = page.locator("figure.chart svg.plot")
        assert charts.count() == len(EXPECTED_CHARTS)
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box and box["width"] > 300 and box["height"] > 150, (EXPECTED_CHARTS[i], box)
        assert page.locator("pre.text span.seg.trained").count() == 3
        assert page.locator("pre.text").first.inner_text().startswith("<|user|>\n把这句话")
        assert page.evaluate(GLYPHS_DIFFER), "Chinese text renders as missing-glyph boxes"

        # Hover read-out: the value of each run at the step under the pointer.
        first = charts.first.bounding_box()
        page.mouse.move(first["x"] + first["width"] * 0.55, first["y"] + first["height"] * 0.5)
        tip = page.locator("figure.chart .tip").first
        assert tip.is_visible()
        assert "baseline" in tip.inner_text() and "lr-3e-4" in tip.inner_text()
        page.mouse.move(0, 0)

        out = browser.artifacts_dir() / "report.png"
        page.screenshot(path=str(out), full_page=True)
        assert png_size(out)[1] > 1000
        assert problems == []


# --- the final evaluation and the run summary ---------------------------------------------------------------


def trained_run(path: Path, *, name: str, best_step: int, best_acc: float) -> Path:
    """What mg-train logs: eval every 6 steps, the best checkpoint re-evaluated at the end, run values."""
    with RunLogger(path, config={"run_name": name}, tensorboard=False) as log:
        for step in range(1, 19):
            log.log(step, {"loss": 2.0 / step, "learning_rate": 1e-3})
            if step % 6 == 0:
                acc = best_acc if step == best_step else best_acc - 0.2
                log.log(step, {"accuracy": acc, "loss": 1.0 / step}, split="eval")
        log.log_final(best_step, {"accuracy": best_acc, "loss": 1.0 / best_step})
        log.log_summary(18, {"train_loss": 0.5, "train_runtime": 4.25, "train_samples_per_second": 96.0})
    return path


@pytest.fixture(scope="module")
def final_page(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("final")
    runs = [
        trained_run(root / "a", name="best-at-6", best_step=6, best_acc=0.75),
        trained_run(root / "b", name="best-at-12", best_step=12, best_acc=0.875),
    ]
    return write_report(runs, root / "report.html").read_text(encoding="utf-8")


def chart_keys(page: str) -> list[str]:
    return re.findall(r'<figure class="chart" id="[^"]*" data-key="([^"]+)"', page)


def test_final_and_summary_values_are_not_charts(final_page):
    assert chart_keys(final_page) == ["train/loss", "train/learning_rate", "eval/loss", "eval/accuracy"]


def test_eval_curves_end_at_the_last_evaluation_not_at_the_final_one(final_page):
    figure = final_page[final_page.index('data-key="eval/accuracy"') :]
    data = json.loads(figure[figure.index(">", figure.index("chart-data")) + 1 : figure.index("</script>")])
    for series in data["series"]:
        assert series["steps"] == [6, 12, 18]  # no extra point appended at step 18 (no vertical jump)
    assert [s["values"][-1] for s in data["series"]] == [pytest.approx(0.55), pytest.approx(0.675)]


def final_rows(page: str) -> dict[tuple[str, str], list[str]]:
    final = page[page.index('<section id="final">') : page.index('<section id="samples">')]
    rows, split = {}, ""
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", final, flags=re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)
        split = cells[0] or split
        rows[(split, cells[1])] = cells[2:]
    return rows


def test_final_table_shows_the_best_checkpoint_with_its_step(final_page):
    rows = final_rows(final_page)
    assert list(rows)[:3] == [("final", "checkpoint step"), ("final", "loss"), ("final", "accuracy")]
    assert rows[("final", "checkpoint step")] == ["6", "12"]
    assert rows[("final", "accuracy")] == ["0.75", "0.875"]
    assert rows[("final", "loss")] == ["0.1667", "0.08333"]  # of the same checkpoints, not of step 18
    assert not [key for key in rows if key[0] == "eval"], "last-eval values of another checkpoint mixed in"
    assert 'class="num best" title="step 12">0.875<' in final_page


def test_summary_values_are_a_table(final_page):
    rows = final_rows(final_page)
    assert rows[("summary", "train_runtime")] == ["4.25", "4.25"]
    assert rows[("summary", "train_samples_per_second")] == ["96", "96"]
    assert rows[("summary", "train_loss")] == ["0.5", "0.5"]


def test_an_older_run_without_a_final_record_keeps_its_last_eval_values(tmp_path):
    with RunLogger(tmp_path / "old", tensorboard=False) as log:
        log.log(6, {"accuracy": 0.5}, split="eval")
        log.log(12, {"accuracy": 0.625}, split="eval")
    rows = final_rows(write_report([tmp_path / "old"], tmp_path / "r.html").read_text(encoding="utf-8"))
    assert rows == {("eval", "accuracy"): ["0.625"]}
