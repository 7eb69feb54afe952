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
    assert len(tables) == 1 + 3 * 2  # systems, then results and differences per task
    headers = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert headers == ["Systems", "toxicity", "occupation", "bbnli"]
    assert "base" in tables[0].text and "uddia" in tables[0].text
