"""The HTML report renders in a real browser (headless Chromium): every plot decodes and shows, the tables
are there, and the page needs nothing from outside itself."""
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_report_html_is_self_contained(compare_run):
    html = (Path(compare_run[1]["out"]) / "report.html").read_text()
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) == 6 and all(src.startswith("data:image/png;base64,") for src in images)


@pytest.fixture
def browser():
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"headless render test needs chromium ({CHROMIUM}) and chromedriver ({CHROMEDRIVER}): "
                    "apt-get install chromium chromium-driver, or set CHROMIUM_BINARY / CHROMEDRIVER")
    webdriver = pytest.importorskip("selenium.webdriver", reason="headless render test needs `pip install selenium`")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="suite-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_in_headless_chromium(compare_run, browser):
    from selenium.webdriver.common.by import By

    path = Path(compare_run[1]["out"]) / "report.html"
    browser.get(path.as_uri())
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 6
    for img in images:
        browser.execute_script("arguments[0].scrollIntoView(true);", img)
        width = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
        assert width and width > 0, img.get_attribute("id")
        assert img.is_displayed(), img.get_attribute("id")
    tables = browser.find_elements(By.TAG_NAME, "table")
    # systems, then results and differences per task, and toxicity by prompt kind for each of 3 systems
    assert len(tables) == 1 + 3 * 2 + 3
    headers = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headers == ["Systems", "toxicity", "occupation", "bbnli"]
    assert "base" in tables[0].text and "uddia" in tables[0].text


def test_demo_like_report_has_its_banner_on_top_and_readable_panels(browser, tmp_path):
    """A demo-like run (proxy scorer, demo prompts): the banner is the first thing under the title, visible
    without scrolling, and the differences plot has one panel per scale."""
    from selenium.webdriver.common.by import By
    from test_report_content import demo_like_results

    from fairalign.eval.suite.plots import difference_panels
    from fairalign.eval.suite.report import write_reports

    results = demo_like_results()
    write_reports(results, tmp_path)
    browser.set_window_size(1280, 900)
    browser.get((tmp_path / "report.html").as_uri())
    banner = browser.find_element(By.CLASS_NAME, "banner")
    first_h2 = browser.find_elements(By.TAG_NAME, "h2")[0]
    assert banner.is_displayed() and banner.location["y"] + banner.size["height"] < min(first_h2.location["y"], 900)
    assert "profanity proxy" in banner.text and "demo prompts (8, bundled)" in banner.text
    plot = browser.find_element(By.ID, "plot-toxicity_differences")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", plot) > 0
    assert len(difference_panels(results, "toxicity")) == 2
    browser.save_screenshot(str(tmp_path / "report.png"))
