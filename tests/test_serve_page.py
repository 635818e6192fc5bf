"""The page of ``snnfast serve`` in a real headless browser: Debian's ``chromium`` driven through
its ``chromedriver`` by selenium, against a real server on 127.0.0.1.

It loads the page, uploads a test image, waits for the results and checks that the neighbour
images loaded, that the spike chart and the chip estimate are drawn from the answer, that a
click on a neighbour searches with it, and that a refused file shows the service's message. It
saves a screenshot; with ``SNNFAST_SCREENSHOT=PATH`` set it is also written to ``PATH`` (the
README's ``docs/serve-screenshot.png`` is made that way).

Without chromium or its driver the test is skipped, except under CI (``CI`` set), where it
fails: CI installs them (``scripts/setup.sh``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers_convert import fashion
from helpers_serve import Server, make_catalogue, request

from snnfast import ann

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytestmark = pytest.mark.skipif(not ann.SHIPPED_MODEL.exists(), reason="no shipped model")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WAIT_S = 60


def _need_browser() -> None:
    missing = [n for n, p in (("chromium", CHROMIUM), ("chromedriver", DRIVER)) if p is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install 'selenium==4.51.0')")
    if missing:
        why = f"the browser test needs {', '.join(missing)} (scripts/setup.sh installs them)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_browser()
    cat = make_catalogue(tmp_path_factory.mktemp("catalogue"))
    s = Server(
        [
            "--model", str(cat.model),
            "--index", str(cat.index["spike_count"]), str(cat.index["membrane"]),
            "--ann-index", str(cat.index["ann"]),
            "--images", "train",  # the first 300 images are the indexes'
        ]
    )  # fmt: skip
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S).until(condition)
    except TimeoutException:
        error = driver.find_element("id", "error").text
        raise AssertionError(f"timed out waiting for {what}; the page says {error!r}") from None


def _images_loaded(driver, selector: str) -> list:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(i => i.complete && i.naturalWidth > 0);",
        selector,
    )


def test_page_uploads_an_image_and_shows_neighbours_and_the_estimate(
    server, browser, tmp_path
) -> None:
    from PIL import Image

    x, y = fashion("test", 1)
    query = tmp_path / "ankle-boot.png"
    Image.fromarray(x[0, 0]).resize((112, 112), Image.Resampling.BILINEAR).save(query)
    d = browser
    d.get(server.url + "/")
    _wait(d, lambda d: "Ready" in d.find_element("id", "status").text, "the page to load")
    assert "32-64-10" in d.find_element("id", "model-line").text
    options = [o.text for o in d.find_elements("css selector", "#index option")]
    assert options == ["spike_count, T = 16", "membrane, T = 16"]
    d.find_element("id", "file").send_keys(str(query))
    _wait(d, lambda d: d.find_element("id", "chip-block").is_displayed(), "the results")
    k = int(d.find_element("id", "k").get_attribute("value"))
    for grid in ("#snn-results", "#ann-results"):
        selector = f"{grid} .tile img"
        _wait(d, lambda d, s=selector: len(_images_loaded(d, s)) == k, f"{k} tiles in {grid}")
        _wait(d, lambda d, s=selector: all(_images_loaded(d, s)), f"the images of {grid}")
    # The page shows what the API answers for the same file.
    from helpers_serve import search

    answer = search(server.url, query.read_bytes(), filename=query.name, k=k).json()
    shown = [t.text.split("\n") for t in d.find_elements("css selector", "#snn-results .tile")]
    assert [s[-1] for s in shown] == [f"#{n['id']}" for n in answer["snn"]["items"]]
    assert [s[0] for s in shown] == [f"d = {n['distance']:.3f}" for n in answer["snn"]["items"]]
    assert "ankle-boot.png" in d.find_element("id", "query-facts").text
    bars = d.find_elements("css selector", "#spike-chart rect.bar")
    assert len(bars) == len(answer["chip"]["layers"]) == 6
    widths = [float(b.get_attribute("width")) for b in bars]
    spikes = [layer["spikes"] for layer in answer["chip"]["layers"]]
    assert widths.index(max(widths)) == spikes.index(max(spikes))
    table = d.find_element("id", "chip-table").text
    assert "total energy" in table and "mJ" in table and "latency" in table
    assert f"{answer['chip']['synops']:,}" in table
    shot = tmp_path / "serve.png"
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1280, height + 140)
    assert d.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SNNFAST_SCREENSHOT"):
        target = Path(os.environ["SNNFAST_SCREENSHOT"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    d.set_window_size(1280, 1000)

    # A click on a neighbour searches with that catalogue item.
    first = answer["snn"]["items"][1]["id"]
    d.find_elements("css selector", "#snn-results .tile")[1].click()
    _wait(
        d,
        lambda d: f"catalogue item #{first}" in d.find_element("id", "query-facts").text,
        "the search by a clicked neighbour",
    )
    _wait(
        d,
        lambda d: d.find_elements("css selector", "#snn-results .tile .id")[0].text == f"#{first}",
        "the clicked item to come first",
    )


def test_page_shows_the_services_message_for_a_refused_file(server, browser, tmp_path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    d = browser
    d.get(server.url + "/")
    _wait(d, lambda d: "Ready" in d.find_element("id", "status").text, "the page to load")
    d.find_element("id", "file").send_keys(str(bad))
    _wait(d, lambda d: d.find_element("id", "error").is_displayed(), "the error message")
    text = d.find_element("id", "error").text
    assert text.startswith("415") and "'notes.txt' is not an image" in text
    assert request(f"{server.url}/health").json()["status"] == "ok"
