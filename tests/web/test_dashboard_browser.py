"""The dashboard in a real headless Chromium (Debian chromium + chromedriver) against a real
uvicorn: token prompt, live status, the Halt button, and a screenshot that is not blank."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.conftest import TOKEN, FakeOperated, Served, serve, web_config

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

if not (Path(CHROMIUM).exists() and shutil.which(CHROMEDRIVER)):
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are required in CI", pytrace=False)
    pytest.skip("chromium/chromedriver not installed", allow_module_level=True)

WAIT_S = 10


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def test_login_live_status_halt_and_screenshot(browser: WebDriver, served: Served, fake: FakeOperated,
                                               tmp_path: Path) -> None:
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(served.url + "/")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login-btn").click()

    wait.until(ec.text_to_be_present_in_element((By.ID, "trading-state"), "ACTIVE"))
    status = fake.status()
    assert _text(browser, "events") == str(status["events"])
    assert _text(browser, "settled-pnl") == status["settled_pnl"]
    wait.until(ec.text_to_be_present_in_element((By.ID, "conn"), "live"))  # the SSE stream, not polling
    wait.until(ec.text_to_be_present_in_element((By.ID, "pnl-today"), "4.50"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "orders"), "Kansas City Chiefs @ Denver Broncos"))
    assert _text(browser, "exposure-total") == "75.00"
    assert "Denver Broncos|moneyline" in _text(browser, "exposure-market")  # each market's worst case
    assert browser.find_elements(By.CSS_SELECTOR, "#equity polyline")  # the equity curve was drawn

    fake.bump(10)  # pushed by the stream within a second
    wait.until(ec.text_to_be_present_in_element((By.ID, "events"), str(status["events"] + 10)))

    browser.find_element(By.ID, "halt").click()
    prompt = wait.until(ec.alert_is_present())
    prompt.send_keys("browser test")
    prompt.accept()
    wait.until(ec.text_to_be_present_in_element((By.ID, "trading-state"), "HALTED"))
    assert fake.trading_state == "HALTED" and fake.halt_reason == "browser test"
    assert _text(browser, "halt-reason") == "browser test"

    # a refused reload shows the engine's one-line reason next to the form
    box = browser.find_element(By.CSS_SELECTOR, '[data-strategy="value"]')
    box.find_element(By.CSS_SELECTOR, "textarea").send_keys('{"min_edge": -1}')
    box.find_element(By.CSS_SELECTOR, "button.reload").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, '[data-strategy="value"] .reload-error'),
                                                "params.min_edge: must be >= 0"))

    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, f"screenshot looks blank ({len(colours)} colours)"
    # the strict Content-Security-Policy blocked nothing the page needs
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and "favicon" not in e["message"]]
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_a_wrong_token_returns_to_the_prompt(browser: WebDriver, served: Served) -> None:
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(served.url + "/")
    browser.find_element(By.ID, "token").send_keys("not-the-token")
    browser.find_element(By.ID, "login-btn").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "login-error"), "token refused"))
    assert browser.find_element(By.ID, "login").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('betbot.token')") is None


def test_without_the_stream_the_page_falls_back_to_polling(browser: WebDriver, fake: FakeOperated) -> None:
    running = serve(web_config(max_event_streams=1), fake)
    served = next(running)
    try:
        with httpx.Client(base_url=served.url, timeout=5) as c, \
                c.stream("GET", "/api/events", headers={"Authorization": f"Bearer {TOKEN}"}):
            wait = WebDriverWait(browser, WAIT_S)  # the one stream allowed is taken: the page gets 503
            browser.get(served.url + "/")
            browser.find_element(By.ID, "token").send_keys(TOKEN)
            browser.find_element(By.ID, "login-btn").click()
            wait.until(ec.text_to_be_present_in_element((By.ID, "conn"), "polling"))
            wait.until(ec.text_to_be_present_in_element((By.ID, "trading-state"), "ACTIVE"))
            served.run(fake.halt("from elsewhere"))  # e.g. an MQTT halt: seen by the next poll (2 s)
            wait.until(ec.text_to_be_present_in_element((By.ID, "trading-state"), "HALTED"))
    finally:
        running.close()
