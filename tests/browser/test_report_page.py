"""The HTML report in a real browser (headless Chromium): every table and figure renders, with the
expected rows and series, a legend click toggles a method, and the console has no error."""
import pytest

from tests.unit.test_report import global_run, rec, write_run

pytestmark = pytest.mark.browser


def runs(root):
    """Local (3 clients: MM-Vet and POPE), FedAvg and Fed-CMP (2 seeds each: MM-Vet, POPE, held-out
    loss; MMBench n/a): a held-out figure of 2 lines, MM-Vet and POPE figures of 3, no MMBench figure;
    Table 1 (II) with 3 method rows."""
    root.mkdir()
    local = [rec("local", 0, rnd, c, b, m, v * rnd) for rnd in (1, 2) for c in range(3)
             for b, m, v in (("mmvet", "gpt_eval_score", 10 + c), ("pope", "pope_accuracy", 0.5))]
    write_run(root, "local", 0, local)
    for method, seed, mmvet in (("fedavg", 0, 20.0), ("fedavg", 1, 22.0), ("fedcmp", 0, 30.0), ("fedcmp", 1, 32.0)):
        global_run(root, method, seed, mmvet, 0.7)
    return root


def test_the_report_renders_every_table_and_figure(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from harness.cli import main
    assert main(["report", str(runs(tmp_path / "runs")), "--out", str(tmp_path / "rep"), "--no-paper"]) == 0
    browser.get((tmp_path / "rep" / "index.html").as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3"))
    figures = browser.execute_script(
        "return [...document.querySelectorAll('.js-plotly-plot')].map(e => [e.id, e.data.length,"
        " e.querySelectorAll('g.scatterlayer g.trace').length])")
    assert sorted(figures) == [["fig-II-heldout", 2, 2], ["fig-II-mmvet", 3, 3], ["fig-II-pope", 3, 3]]
    tables = browser.execute_script("return [...document.querySelectorAll('table')].map(t => [t.dataset.name, t.rows.length])")
    # Table 1, then fedma compare's paired tables (Fed-CMP vs FedAvg on 2 seeds: equal losses, d = 0)
    assert tables == [["table1_ii", 4], ["compare_loss_final", 2], ["compare_loss_auc", 2]]
    paired = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "table[data-name=compare_loss_auc] td")]
    assert paired[:4] == ["Fed-CMP", "II", "2", "+0 [+0, +0]"] and paired[-1] == "does not hold"
    first_row = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "table tr:nth-child(2) td")][:3]
    assert first_row[0] == "Local"
    legend = browser.find_elements(By.CSS_SELECTOR, "#fig-II-mmvet g.legend g.traces rect.legendtoggle")
    assert len(legend) == 3
    legend[0].click()           # Plotly waits out its double-click window before it toggles
    WebDriverWait(browser, 5).until(lambda d: d.execute_script(
        "return document.getElementById('fig-II-mmvet').data[0].visible") == "legendonly")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert browser.save_screenshot(str(tmp_path / "report.png")) and (tmp_path / "report.png").stat().st_size > 10_000
