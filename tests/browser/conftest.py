import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("install_chromium.sh")


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Selenium (installed by install_chromium.sh when missing)."""
    res = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"install_chromium.sh failed: {res.stderr[-2000:]}"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,2400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()
