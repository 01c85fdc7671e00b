"""The memory browser in a real headless Chromium (Debian's package, driven by Selenium).

Needs `apt-get install chromium chromium-driver` and `pip install selenium`; skipped without them.
Runs against the bundled sample history. `LMM_SCREENSHOTS=docs/screenshots` writes the README's
screenshots there (otherwise into a temporary folder).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lmm import cognitions, ingest, paths
from lmm.extract import get_extractor, run_extraction
from lmm.hooks import wrap_memory
from lmm.recall import recall
from lmm.store import Store
from lmm.ui import UIConfig, make_server
from lmm.ui.recall import hook_config
from lmm.ui.sessions import turn_anchor

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,900", "--hide-scrollbars",
]  # fmt: skip

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "no headless browser: apt-get install -y chromium chromium-driver", allow_module_level=True
    )
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed: pip install selenium"
)
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@dataclass
class Browser:
    driver: Any
    base: str
    token: str
    db: Path
    shots: Path

    def open(self, path: str) -> None:
        sep = "&" if "?" in path else "?"
        self.driver.get(f"{self.base}{path}{sep}token={self.token}")

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def wait(self, css: str, text: str | None = None) -> Any:
        """The element at `css` (with exactly `text`, when given) once the new page shows it."""

        def ready(driver: Any) -> Any:
            el = driver.find_element(By.CSS_SELECTOR, css)
            return el if text is None or el.text == text else False

        return WebDriverWait(self.driver, 10, ignored_exceptions=[StaleElementReferenceException,
                             NoSuchElementException]).until(ready)  # fmt: skip


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LMM_HOME", str(home))
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
        with Store(paths.db_path()) as store:
            ingest.ingest(store, [paths.sample_projects()])
            run_extraction(store, get_extractor("rules"))
        httpd, url = make_server(UIConfig())
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
            options.add_argument(flag)
        service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
        driver = webdriver.Chrome(options=options, service=service)
        shots = Path(os.environ.get("LMM_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
        shots.mkdir(parents=True, exist_ok=True)
        try:
            yield Browser(
                driver, url.split("/?")[0], url.split("token=")[1], paths.db_path(), shots
            )
        finally:
            driver.quit()
            httpd.shutdown()
            httpd.server_close()


def test_browse_to_a_session(browser: Browser) -> None:
    browser.open("/")
    browser.shot("sessions")
    browser.driver.find_element(By.LINK_TEXT, "NOAA fetcher and SQLite database-locked fix").click()
    browser.wait("h1", "NOAA fetcher and SQLite database-locked fix")
    call = browser.find("details.tool")
    code = call.find_element(By.TAG_NAME, "pre")
    assert not code.is_displayed()  # tool calls start collapsed
    call.find_element(By.TAG_NAME, "summary").click()
    assert code.is_displayed() and code.text.startswith("{")
    browser.open("/session/e3b8afa4-b77f-4150-a7f3-a1049b2966f7")
    browser.shot("session")


def test_open_a_memory_and_its_source_turn(browser: Browser) -> None:
    with Store(browser.db) as store:  # the best-supported memory taken from sessions
        cog = max(cognitions.list_(store), key=lambda c: (c.evidence, -(c.id or 0)))
    source = next(s for s in cog.sources if s.session_id)
    browser.open("/memories")
    browser.shot("memories")
    browser.find(f'a[href^="/memory/{cog.id}?"]').click()
    browser.wait("h1", f"Memory #{cog.id}")
    assert browser.find(".card .text").text == cog.text
    browser.shot("memory")
    browser.driver.find_elements(By.CSS_SELECTOR, "a.source-link")[0].click()
    browser.wait(".turn:target")
    assert browser.driver.current_url.endswith(
        f"/session/{source.session_id}?token={browser.token}#{turn_anchor(source.turn_key or '')}"
    )
    target = browser.driver.execute_script("return document.querySelector(':target')")
    assert target.get_attribute("id") == turn_anchor(source.turn_key or "")
    assert source.quote.split("\n")[0] in target.text


def test_superseded_history_is_visible(browser: Browser) -> None:
    with Store(browser.db) as store:
        old = cognitions.list_(store, status="superseded")[0]
    browser.open("/memories")
    browser.driver.find_element(By.LINK_TEXT, "superseded").click()
    browser.find(f'a[href^="/memory/{old.id}?"]').click()
    browser.wait("h1", f"Memory #{old.id}")
    assert f"Replaced by #{old.superseded_by} on" in browser.find("main").text
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "table tr")[1:]
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows][:2] == [
        "superseded",
        "active",
    ]


def test_edit_a_memory_and_see_it_in_lmm_memories(
    browser: Browser, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmm.cli import main

    new_text = "To run the tests: `make check`."
    with Store(browser.db) as store:
        old = cognitions.list_(store, category="workflow")[0]
    browser.open(f"/memory/{old.id}")
    box = browser.find("textarea[name=text]")
    box.clear()
    box.send_keys(new_text)
    browser.driver.find_element(By.XPATH, "//button[text()='Save correction']").click()
    flash = browser.wait(".flash").text
    m = re.fullmatch(rf"Saved\. #(\d+) replaces #{old.id}, which is kept as history\.", flash)
    assert m, flash
    assert browser.find(".card .text").text == new_text
    browser.shot("memory-edited")
    with Store(browser.db) as store:
        listed = [c.text for c in cognitions.list_(store, category="workflow")]
    assert new_text in listed and old.text not in listed
    monkeypatch.setenv("LMM_HOME", str(browser.db.parent))
    assert main(["memories", "--category", "workflow"]) == 0
    out = capsys.readouterr().out
    assert new_text in out and old.text not in out


def test_run_a_recall_query(browser: Browser) -> None:
    query = "how do I run the tests"
    browser.open("/recall")
    box = browser.find("input[name=q]")
    box.send_keys(query)
    browser.driver.find_element(By.XPATH, "//button[text()='Recall']").click()
    browser.wait("pre.injected")
    with Store(browser.db) as store:
        expected = recall(store, query, config=hook_config())
    assert expected.brief.text
    assert browser.find("pre.injected").text == wrap_memory(expected.brief.text, title="recall")
    assert browser.find(".brief-tokens").text == str(expected.brief.tokens)
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "tr.hit")
    assert len(rows) == len(expected.hits) > 0
    browser.shot("recall")
