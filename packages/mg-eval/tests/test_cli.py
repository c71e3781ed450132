"""The `mg-eval report` command as a user runs it (the page itself is tested in test_report*.py)."""

from conftest import mg_eval

from mg_eval.runlog import RunLogger


def test_report_command_writes_html_and_pngs(tmp_path):
    for name in ("a", "b"):
        with RunLogger(tmp_path / name, config={"run_name": f"run-{name}"}, tensorboard=False) as log:
            for step in range(1, 6):
                log.log(step, {"loss": 2.0 / step, "learning_rate": 1e-4, "grad_norm": 1.0})
            log.log(5, {"accuracy": 0.8}, split="eval")
    out = tmp_path / "report.html"
    proc = mg_eval("report", tmp_path / "a", tmp_path / "b", "-o", out, "--png-dir", tmp_path / "png")
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    assert "run-a" in html and "run-b" in html and "<svg" in html
    assert (tmp_path / "png" / "train_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    proc = mg_eval("report", tmp_path, "-o", tmp_path / "r.html")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path}: not a run directory (no metrics.jsonl)"
    assert not (tmp_path / "r.html").exists()
