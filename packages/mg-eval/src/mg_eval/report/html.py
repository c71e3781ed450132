"""The page: one self-contained HTML document (inline CSS, SVG and a little JS; nothing fetched)."""

from __future__ import annotations

import json
from html import escape
from importlib.resources import files

from mg_eval.report.charts import Chart
from mg_eval.report.content import (
    FINAL,
    MISSING,
    TRAIN,
    ConfigRow,
    FinalRow,
    ReportRun,
    SampleGroup,
    format_number,
    format_value,
)

# Inline styles and scripts only; no fetch of any kind, so a stray external reference fails loudly.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
SECTIONS = (
    ("runs", "Runs"),
    ("training", "Training"),
    ("evaluation", "Evaluation"),
    ("final", "Final metrics"),
    ("samples", "Data preview"),
    ("config", "Config"),
)


def asset(name: str) -> str:
    return files("mg_eval.report").joinpath(name).read_text(encoding="utf-8")


def render_page(
    *,
    title: str,
    subtitle: str,
    runs: list[ReportRun],
    charts: list[Chart],
    final: list[FinalRow],
    config: list[ConfigRow],
    samples: list[SampleGroup],
) -> str:
    content = {
        "runs": runs_table(runs),
        "training": training(charts),
        "evaluation": evaluation(charts),
        "final": final_table(final, runs),
        "samples": samples_html(samples, runs),
        "config": config_html(config, runs),
    }
    nav = "".join(f'<a href="#{key}">{label}</a>' for key, label in SECTIONS)
    body = "\n".join(section(key, label, content[key]) for key, label in SECTIONS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{escape(title)}</title>
<style>
{asset("report.css")}</style>
</head>
<body>
<header class="top">
<h1>{escape(title)}</h1>
<p class="sub">{escape(subtitle)}</p>
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
<footer>MildGiraffeTrainer · mg-eval report</footer>
<script>
{asset("report.js")}</script>
</body>
</html>
"""


def section(key: str, heading: str, content: str) -> str:
    return f'<section id="{key}">\n<h2>{heading}</h2>\n{content}\n</section>'


def notice(text: str) -> str:
    return f'<p class="notice">{escape(text)}</p>'


def run_chip(run: ReportRun) -> str:
    return f'<span class="run"><span class="swatch" style="background:{run.color}"></span>{escape(run.name)}</span>'


def table(head: list[str], rows: list[str], cls: str = "") -> str:
    return (
        f'<div class="table-wrap"><table class="{cls}"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def runs_table(runs: list[ReportRun]) -> str:
    rows = []
    for r in runs:
        metrics = r.run.metrics
        steps = max((m.step for m in metrics), default=None)
        loss = r.run.last(TRAIN, "loss")
        badge = "" if metrics else '<span class="badge warn">no metrics yet</span>'
        rows.append(
            f'<tr><td>{run_chip(r)}{badge}</td><td class="key">{escape(str(r.run.path))}</td>'
            f'<td class="num">{"—" if steps is None else steps}</td>'
            f'<td class="num">{"—" if loss is None else format_number(loss)}</td>'
            f"<td>{escape(', '.join(r.run.splits())) or '—'}</td>"
            f'<td class="num">{len(metrics)}</td><td class="num">{len(r.run.samples)}</td></tr>'
        )
    head = [
        "<th>run</th>",
        "<th>directory</th>",
        '<th class="num">last step</th>',
        '<th class="num">last train loss</th>',
        "<th>splits</th>",
        '<th class="num">records</th>',
        '<th class="num">samples</th>',
    ]
    out = table(head, rows)
    if not any(r.run.metrics for r in runs):
        out += notice("No metrics logged yet: metrics.jsonl is empty, so there are no curves to draw.")
    return out


def figure(chart: Chart) -> str:
    spec = chart.spec
    # JSON in a <script> element: with every "<" escaped, no "</script>" or "<!--" can end or confuse it.
    data = json.dumps(chart.hover, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return (
        f'<figure class="chart" id="chart-{escape(chart.filename[:-4])}" data-key="{escape(spec.key)}">\n'
        f'{chart.svg}\n<script type="application/json" class="chart-data">{data}</script>\n</figure>'
    )


def grid(charts: list[Chart]) -> str:
    return '<div class="grid">\n' + "\n".join(figure(c) for c in charts) + "\n</div>"


def training(charts: list[Chart]) -> str:
    train = [c for c in charts if c.spec.split == TRAIN]
    if not train:
        return notice("No training metrics logged yet.")
    return grid(train)


def evaluation(charts: list[Chart]) -> str:
    splits = list(dict.fromkeys(c.spec.split for c in charts if c.spec.split != TRAIN))
    if not splits:
        return notice("No evaluation metrics logged yet.")
    parts = []
    for split in splits:
        these = [c for c in charts if c.spec.split == split]
        parts.append(
            f'<h3>{escape(split)} <span class="count">· {len(these)} metrics</span></h3>\n{grid(these)}'
        )
    return "\n".join(parts)


def final_table(rows: list[FinalRow], runs: list[ReportRun]) -> str:
    if not rows:
        return notice("No metrics logged yet.")
    head = ["<th>split</th>", "<th>metric</th>", *(f'<th class="num">{run_chip(r)}</th>' for r in runs)]
    body, previous = [], None
    for row in rows:
        cells = []
        for i, cell in enumerate(row.cells):
            if cell is None:
                cells.append('<td class="num missing">—</td>')
                continue
            value, step = cell
            cls = "num best" if i == row.best else "num"
            cells.append(f'<td class="{cls}" title="step {step}">{format_number(value)}</td>')
        start = row.split != previous
        split = escape(row.split) if start else ""
        body.append(
            f'<tr class="{"group-start" if start and previous else ""}"><td class="split">{split}</td>'
            f'<td class="key">{escape(row.name)}</td>{"".join(cells)}</tr>'
        )
        previous = row.split
    note = '<p class="note">'
    if any(row.split == FINAL for row in rows):
        note += (
            "<b>final</b>: the evaluation of the exported model, i.e. the best checkpoint when one was "
            "selected, at that checkpoint's step; <b>summary</b>: values of the whole run. "
        )
    note += "Other rows: the last logged value of each metric (hover a cell for its step)."
    note += (
        " ▲ marks the best run (lower is better for losses and error rates).</p>" if len(runs) > 1 else "</p>"
    )
    return note + table(head, body, "final")


def sample_html(sample: dict, segments: list[tuple[str, bool]]) -> str:
    spans = "".join(
        f'<span class="seg {"trained" if trained else "ctx"}">{escape(text)}</span>'
        for text, trained in segments
    )
    head = [f"<span>#{escape(str(sample.get('index', '')))}</span>"]
    if sample.get("step") is not None:
        head.append(f"<span>step {escape(str(sample['step']))}</span>")
    if "label" in sample:
        head.append(f'<span class="label">label: <b>{escape(format_value(sample["label"]))}</b></span>')
    return f'<div class="sample"><div class="head">{"".join(head)}</div><pre class="text">{spans}</pre></div>'


def samples_html(groups: list[SampleGroup], runs: list[ReportRun]) -> str:
    if not groups:
        return notice("No sample previews logged (samples.jsonl is empty or missing).")
    legend = (
        '<div class="legend"><span class="seg trained">trained on</span>'
        '<span class="seg ctx">context, not trained on</span>'
        '<span class="note">Highlighted spans are the tokens the loss is computed on.</span></div>'
    )
    parts = [legend]
    for g in groups:
        who = " ".join(run_chip(r) for r in g.runs) if len(runs) > 1 else ""
        shown = f"{len(g.samples)} of {g.total}" if g.total > len(g.samples) else str(g.total)
        parts.append(
            f'<h3>{escape(g.split)} <span class="count">· {shown} sample{"s" if g.total != 1 else ""}</span> {who}</h3>'
        )
        parts.append('<div class="samples">' + "".join(map(sample_html, g.samples, g.segments)) + "</div>")
    return "\n".join(parts)


def config_html(rows: list[ConfigRow], runs: list[ReportRun]) -> str:
    if not rows:
        return notice("No config.json in these runs.")
    several = len(runs) > 1
    head = (
        ["<th>key</th>", *(f"<th>{run_chip(r)}</th>" for r in runs)]
        if several
        else ["<th>key</th>", "<th>value</th>"]
    )
    body = []
    differs = sum(row.differs for row in rows)
    if several:
        body.append(
            f'<tr class="divider"><td colspan="{len(runs) + 1}">{differs} keys differ between runs</td></tr>'
        )
    for i, row in enumerate(rows):
        if several and i == differs:
            body.append(f'<tr class="divider"><td colspan="{len(runs) + 1}">Same in all runs</td></tr>')
        cells = "".join(
            f'<td class="val{" missing" if v is MISSING else ""}">{escape(format_value(v))}</td>'
            for v in row.values
        )
        body.append(
            f'<tr class="{"diff" if row.differs else ""}"><td class="key">{escape(row.key)}</td>{cells}</tr>'
        )
    raw = "".join(
        f"<details><summary>config.json of {escape(r.name)}</summary>"
        f"<pre>{escape(json.dumps(r.run.config, ensure_ascii=False, indent=2, default=str))}</pre></details>"
        for r in runs
    )
    return table(head, body, "config") + raw
