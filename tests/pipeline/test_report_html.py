"""report.html: a real tiny fcot distill run rendered in a real headless Chromium, filters clicked, counts checked.

The page's data must be the run folder's own records: curation's decisions and lm-eval's samples files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from helpers.runs import tiny_args

from fcot_plugin.cli.fcot import main as fcot_main
from fcot_plugin.curation.decisions import read_decisions
from fcot_plugin.pipeline.distill import distill
from fcot_plugin.pipeline.report_html import render_html
from fcot_plugin.pipeline.run_folder import RunFolder


def chromium() -> str | None:
    """The system Chromium (CI on Debian: ``apt-get install chromium``), or ``FCOT_CHROMIUM``."""
    found = os.environ.get("FCOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).is_file() else None


@pytest.fixture(scope="module")
def run_dir(tiny_model, tmp_path_factory) -> Path:
    """A finished tiny run: the paper's Coin Flip rationales for 12 questions, 4 test questions scored."""
    run = tmp_path_factory.mktemp("report") / "run"
    distill(tiny_args(tiny_model, run))
    return run


def page_blob(html: str) -> dict:
    start = html.index('type="application/json">') + len('type="application/json">')
    return json.loads(html[start : html.index("</script>", start)].replace("<\\/", "</"))


def test_the_page_holds_the_run_folder_records(run_dir):
    folder = RunFolder(run_dir)
    page = page_blob(folder.report_html.read_text())
    decisions = read_decisions(folder.data_dir)
    stats = folder.results("curate")["stats"]
    reasons = [r["reason"] for record in decisions for r in record["rationales"]]
    assert len(reasons) == stats["rationales"] == 12 and reasons.count("kept") == stats["rows"]
    train = [q for q in page["questions"] if q["split"] == "train"]
    assert [[r["reason"] for r in q["rationales"]] for q in train] == [
        [r["reason"] for r in record["rationales"]] for record in decisions
    ]
    # each test output is the one lm-eval logged, and the verdicts add up to the accuracy in the report
    test = [q for q in page["questions"] if q["split"] == "test"]
    assert len(test) == 4
    for row in page["rows"]:
        if row["key"] in ("student", "zeroshot", "zscot"):
            outputs = [o for q in test for o in q["outputs"] if o["key"] == row["key"]]
            assert len(outputs) == row["n"] and sum(o["correct"] for o in outputs) / row["n"] == row["accuracy"]
    assert page["plots"]["accuracy"]  # the PNG travels inside the page


def test_fcot_report_writes_the_page_again_and_opens_it(run_dir, monkeypatch, capsys):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    before = (run_dir / "report.html").stat().st_mtime_ns
    fcot_main(["report", str(run_dir), "--open"])
    assert (run_dir / "report.html").stat().st_mtime_ns > before
    assert opened == [(run_dir / "report.html").resolve().as_uri()]
    assert "report.html" in capsys.readouterr().out


def test_fcot_report_on_a_folder_without_a_run_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fcot_main(["report", str(tmp_path)])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "holds no finished fcot distill run" in line


@pytest.mark.skipif(chromium() is None, reason="no Chromium: apt-get install chromium, or set FCOT_CHROMIUM")
def test_the_page_renders_and_filters_in_headless_chromium(run_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    decisions = read_decisions(RunFolder(run_dir).data_dir)
    reasons = [r["reason"] for record in decisions for r in record["rationales"]]
    rejected = sum(reason not in ("kept", "held_out") for reason in reasons)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route("http*://**", lambda route: route.abort())  # no network: the page is self-contained
        page.goto((run_dir / "report.html").as_uri())
        assert page.inner_text("#count-questions") == str(len(decisions) + 4)
        assert page.inner_text("#count-rationales") == str(len(reasons))
        assert page.inner_text("#count-kept") == str(reasons.count("kept"))
        page.click("[data-filter=status] button[data-value=rejected]")
        assert page.inner_text("#count-rationales") == str(rejected)
        assert page.inner_text("#count-kept") == "0"
        assert page.locator(".item.kept").count() == 0
        page.click("[data-filter=status] button[data-value=all]")
        page.click("[data-filter=split] button[data-value=test]")
        assert page.inner_text("#count-questions") == "4" and page.locator(".question").count() == 4
        when = page.locator(".question").first.locator(".when")
        assert when.all_inner_texts() == ["before training"] * 2 + ["after training"]  # zero-shot, zero-shot-CoT
        page.fill("#search", "no-question-says-this")
        page.wait_for_function("document.getElementById('count-questions').textContent === '0'")
        page.fill("#search", "")
        page.click("[data-filter=split] button[data-value=all]")
        page.wait_for_function(f"document.getElementById('count-questions').textContent === '{len(decisions) + 4}'")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert not errors
        browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.skipif(chromium() is None, reason="no Chromium: apt-get install chromium, or set FCOT_CHROMIUM")
def test_ten_thousand_rationales_filter_at_once(run_dir, tmp_path):
    """D=8 over 1,250 questions: the page loads and a filter redraws within a second (one page of cards drawn)."""
    from playwright.sync_api import sync_playwright

    page_data = page_blob((run_dir / "report.html").read_text())
    reasons = ("kept", "wrong_answer", "duplicate", "no_answer")
    page_data["questions"] = [
        {
            "split": "train",
            "id": i,
            "question": f"question {i}",
            "gold": "yes",
            "outputs": [],
            "rationales": [
                {
                    "d": d,
                    "text": f"rationale {i}.{d} " + "step. " * 60,
                    "predicted": "yes",
                    "correct": d % 4 in (0, 2),
                    "reason": reasons[d % 4],
                }
                for d in range(8)
            ],
        }
        for i in range(1250)
    ]
    path = tmp_path / "big.html"
    path.write_text(render_html(page_data))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        started = time.monotonic()
        page.goto(path.as_uri())
        assert page.inner_text("#count-rationales") == "10000"
        loaded = time.monotonic() - started
        started = time.monotonic()
        page.click("[data-filter=status] button[data-value=kept]")
        assert page.inner_text("#count-rationales") == "2500"
        clicked = time.monotonic() - started
        assert page.locator(".question").count() == 50  # one page
        browser.close()
    assert loaded < 5 and clicked < 1, (loaded, clicked)
