"""The memory browser in a real headless Chromium (Debian's package, driven by Selenium).

Needs `apt-get install chromium chromium-driver` and `pip install selenium`; skipped without them.
Runs against the bundled sample history, and a synthetic store of 1,500 sessions for paging and
search, at a desktop (1400x900) and a phone (390x844) viewport. `LMM_SCREENSHOTS=docs/screenshots`
writes the README's screenshots there (otherwise into a temporary folder).
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

from lmm import paths
from lmm.ingest import run as ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.retrieve.recall import recall
from lmm.serve.hooks import wrap_memory
from lmm.store import cognitions
from lmm.store.db import Store
from lmm.ui import UIConfig, make_server
from lmm.ui.recall import hook_config
from lmm.ui.sessions import turn_anchor

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,900", "--hide-scrollbars",
]  # fmt: skip
WIDTHS = {"desktop": (1400, 900), "phone": (390, 844)}

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
from selenium.webdriver.common.keys import Keys  # noqa: E402
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

    def viewport(self, width: int, height: int) -> None:
        """Emulate a viewport of exactly width x height CSS pixels (a phone: touch, mobile)."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)

    def overflow(self) -> int:
        """How many CSS pixels the page is wider than the viewport (0: no sideways scroll)."""
        return int(self.driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"))  # fmt: skip

    def console_errors(self) -> list[str]:
        """The browser console's errors since the last call (a refused request is one)."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def find(self, css: str) -> Any:
        """The element at `css`, waited for: the driver may answer before the new page is in."""
        return self.wait(css)

    def script(self, js: str, expected: Any) -> None:
        """Wait until `js` returns `expected`."""
        WebDriverWait(self.driver, 10).until(lambda d: d.execute_script(js) == expected)

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
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
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
    edit = browser.driver.find_element(By.XPATH, "//details[@class='tool'][summary/b='Edit']")
    edit.find_element(By.TAG_NAME, "summary").click()
    diff = edit.find_element(By.CSS_SELECTOR, "pre.diff")  # an edit reads as a diff, not JSON
    assert diff.is_displayed()
    assert diff.find_elements(By.CSS_SELECTOR, ".del") and diff.find_elements(
        By.CSS_SELECTOR, ".add"
    )
    browser.driver.execute_script("arguments[0].scrollIntoView()", edit)
    browser.shot("session-edit")


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
    WebDriverWait(browser.driver, 10).until(lambda d: "superseded" in d.current_url)
    link = browser.find(f'a[href^="/memory/{old.id}?"]').get_attribute("href")
    browser.driver.get(link)  # the link's own page (a click can land on a page still loading)
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
    box = browser.wait("main input[name=q]")
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


# ---- a big store: paging, search, both widths


BIG = 1_500  # sessions in the synthetic store
WORDS = ("alpha", "bravo", "delta", "gamma", "kappa", "sigma", "omega", "theta")


def big_store(db: Path) -> None:
    """BIG sessions of two turns each in three projects, and 300 one-line code facts."""
    from lmm.records import SessionInfo, Turn

    with Store(db) as store:
        for i in range(BIG):
            sid = f"s{i:05d}"
            project = f"/home/dev/project-{i % 3}"
            day = f"2026-01-{1 + i // 60:02d}T{i % 60 // 4:02d}:{i % 4 * 15:02d}:00Z"  # in order
            store.add_session(SessionInfo(sid, "claude", project=project,
                                          title=f"Session {i} about {WORDS[i % 8]}"))  # fmt: skip
            store.add_turns([
                Turn(sid, f"{sid}-u", "user", "message", f"Fix the {WORDS[i % 8]} parser, "
                     f"ticket T{i:05d}x", uuid=f"{sid}-u", timestamp=day, cwd=project),
                Turn(sid, f"{sid}-a", "assistant", "message", "Done: `make check` passes.\n"
                     "- one\n- two", uuid=f"{sid}-a", parent_uuid=f"{sid}-u", timestamp=day,
                     cwd=project),
            ])  # fmt: skip
        store.refresh_sessions(f"s{i:05d}" for i in range(BIG))
        with store.transaction():
            for i in range(300):
                cognitions.add(store, cognitions.Cognition(
                    f"src/mod_{i}.py defines parse_{i}()", "fact", origin="code",
                    project_id=store.project_id(f"/home/dev/project-{i % 3}")))  # fmt: skip


@pytest.fixture(scope="module")
def big(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """The same browser on a second server over the big store."""
    db = tmp_path_factory.mktemp("big") / "lmm.db"
    big_store(db)
    httpd, url = make_server(UIConfig(db=db))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield Browser(browser.driver, url.split("/?")[0], url.split("token=")[1], db,
                      browser.shots)  # fmt: skip
    finally:
        browser.viewport(*WIDTHS["desktop"])
        httpd.shutdown()
        httpd.server_close()


def test_paging_through_1500_sessions(big: Browser) -> None:
    big.open("/")
    assert big.find(".pager .pos").text == "1–50 of 1,500 sessions"
    assert len(big.driver.find_elements(By.CSS_SELECTOR, "tr[data-item]")) == 50
    big.find("a[rel=next]").click()
    assert big.wait(".pager .pos").text == "51–100 of 1,500 sessions"
    big.open("/?page=30")
    assert big.wait(".pager .pos", "1,451–1,500 of 1,500 sessions")
    assert not big.driver.find_elements(By.CSS_SELECTOR, "a[rel=next]")
    shown = [a.text for a in big.driver.find_elements(By.CSS_SELECTOR, "tr[data-item] td a")]
    assert len(shown) == 50 and "Session 0 about alpha" in shown  # the oldest, on the last page
    assert not big.console_errors()


def test_searching_sessions_and_memories(big: Browser) -> None:
    big.open("/")
    big.find(".pager")
    big.find("body").send_keys("/")  # the key focuses the search
    box = big.driver.switch_to.active_element
    assert box.get_attribute("id") == "q"
    box.send_keys("T01234x\n")  # a word said in one session only
    big.wait(".pager .pos", "1–1 of 1 sessions")
    assert big.find("tr[data-item] td a").text == "Session 1234 about delta"
    big.open("/?q=kappa&project=")  # every 8th session says it
    assert big.wait(".pager .pos", "1–50 of 187 sessions")
    big.open("/memories?origin=code&q=parse_12")  # parse_12, parse_120..129
    assert big.wait(".pager .pos", "1–11 of 11 memories")
    big.open("/memories?origin=code")
    assert big.wait(".pager .pos", "1–50 of 300 memories")
    big.find("a[rel=next]").click()
    assert big.wait(".pager .pos").text == "51–100 of 300 memories"
    big.open("/search?q=delta")
    big.wait("main h2")
    heads = [h.text for h in big.driver.find_elements(By.TAG_NAME, "h2")]
    assert heads == ["Sessions 188", "Memories 0"]  # delta: every 8th, from the 3rd
    assert not big.console_errors()


def test_keys_move_through_the_list_and_the_theme_toggles(big: Browser) -> None:
    big.open("/")
    body = big.find("body")
    big.find(".pager")
    body.send_keys("jjk")
    rows = big.driver.find_elements(By.CSS_SELECTOR, "tr[data-item]")
    assert [r.get_attribute("class") for r in rows[:3]] == ["sel", "", ""]
    body.send_keys("j", Keys.ENTER)
    big.wait("h1", "Session 1498 about delta")
    big.find("#theme").click()
    big.script("return document.documentElement.dataset.theme", "dark")
    big.open("/")  # remembered
    big.find("main")
    big.script("return document.documentElement.dataset.theme", "dark")
    big.find("#theme").click()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_no_page_scrolls_sideways_or_logs_an_error(
    browser: Browser, big: Browser, width: str
) -> None:
    with Store(browser.db) as store:
        cog = max(cognitions.list_(store), key=lambda c: (c.evidence, -(c.id or 0)))
    note_an_injection(browser.db.parent)
    browser.viewport(*WIDTHS[width])
    pages = {
        "sessions": (browser, "/"),
        "session": (browser, "/session/e3b8afa4-b77f-4150-a7f3-a1049b2966f7"),
        "memories": (browser, "/memories"),
        "memory": (browser, f"/memory/{cog.id}"),
        "forget": (browser, f"/memory/{cog.id}/forget"),
        "recall": (browser, "/recall?q=how+do+I+run+the+tests"),
        "injected": (browser, "/injected?live=0"),
        "search": (browser, "/search?q=tests"),
        "reports": (browser, "/reports"),
        "big-sessions": (big, "/"),
        "big-memories": (big, "/memories?origin=code"),
    }
    wide = []
    for name, (where, path) in pages.items():
        where.open(path)
        where.find("main h1")
        for d in where.driver.find_elements(By.CSS_SELECTOR, "main details"):
            where.driver.execute_script("arguments[0].open = true", d)  # long tool output too
        if where.overflow() > 0:
            wide.append((name, where.overflow()))
        if name in ("sessions", "session", "memories", "memory", "injected", "big-sessions"):
            where.shot(f"{name}-{width}")
    assert wide == []
    assert browser.console_errors() == []
    browser.viewport(*WIDTHS["desktop"])


def note_an_injection(home: Path) -> None:
    """What a UserPromptSubmit hook records when it injects memory."""
    from lmm.serve.hooks import HookInput, context_output, note_injection, wrap_memory

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LMM_HOME", str(home))
        hook = HookInput(*[None] * len(HookInput._fields))._replace(
            hook_event_name="UserPromptSubmit", session_id="e3b8afa4-b77f-4150-a7f3-a1049b2966f7",
            cwd="/home/dev/tidepool", prompt="how do I run the tests?")  # fmt: skip
        text = wrap_memory("[1] workflow: To run the tests: `make check`.", title="recall")
        note_injection(hook, context_output("UserPromptSubmit", text))


CONTRAST_JS = """
function rgb(s) { return s.match(/[\\d.]+/g).map(Number); }
function bg(el) {
  for (; el; el = el.parentElement) {
    var c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
  }
  return [255, 255, 255];
}
return Array.from(document.querySelectorAll(arguments[0])).filter(function (e) {
  return e.offsetParent !== null && e.textContent.trim();
}).map(function (e) {
  return [e.textContent.trim().slice(0, 30), rgb(getComputedStyle(e).color).slice(0, 3), bg(e)];
});
"""


def contrast(fg: list[float], bg: list[float]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours."""

    def lum(c: list[float]) -> float:
        lin = [v / 255 / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4
               for v in c]  # fmt: skip
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_text_contrast_is_at_least_4_5(browser: Browser, theme: str) -> None:
    low = []
    for path in ("/memories?status=all", "/", "/memories?status=superseded"):
        browser.open(path)
        browser.find("main h1")
        browser.driver.execute_script(f"document.documentElement.dataset.theme = '{theme}'")
        shown = browser.driver.execute_script(
            CONTRAST_JS, ".badge, .meta, nav a, .chips a, .sub, main a, th, td, .pager a"
        )
        low += [(path, t, round(contrast(fg, bg), 2)) for t, fg, bg in shown
                if contrast(fg, bg) < 4.5]  # fmt: skip
    assert low == []
    assert any(t == "superseded" for t, _, _ in shown)  # the badge was among those checked
