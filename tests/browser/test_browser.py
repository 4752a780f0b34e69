"""A real browser on the other side of the gateway (issue 9): tests/browser/page, served from a
second origin, registers, signs in, adds favorites with @supabase/postgrest-js, lists them with
their titles embedded and signs out, in headless Chromium. Debian's chromium and chromium-driver
are driven by selenium through their fixed paths, so selenium-manager never runs and nothing
downloads a browser. Each run's screenshot is kept in the test's tmp_path and its path printed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service as ChromeDriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from database.build import ROOT
from ops import services
from tests.conftest import LOG_DIR, Edge, owner_connect

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGE = Path(__file__).resolve().parent / "page"
STEPS = ["register", "login", "add-favorites", "list-favorites", "logout", "after-logout"]


def unavailable(reason: str) -> None:
    """A developer machine without the tools skips; CI must run the test, so there it fails."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser test fails instead of skipping")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page with the postgrest-js bundle next to it, as the static servers serve it."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            unavailable(f"{path} is missing: apt-get install {package} (Debian)")
    if shutil.which("npm") is None:
        unavailable("npm is missing: `make browser-deps` bundles @supabase/postgrest-js with it (Node.js)")
    built = subprocess.run(["make", "-s", "browser-deps"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if built.returncode:
        pytest.fail(f"make browser-deps failed:\n{built.stdout}{built.stderr}")
    bundle = ROOT / built.stdout.strip().splitlines()[-1]  # the target prints the bundle's path last
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(PAGE, site, dirs_exist_ok=True)
    (site / "vendor").mkdir()
    shutil.copyfile(bundle, site / "vendor" / "postgrest-js.mjs")
    return site


@pytest.fixture(scope="module")
def serve(site: Path) -> Iterator[Callable[[str], str]]:
    """Factory: a static server of the page on its own port of 127.0.0.1, i.e. its own origin."""
    started: list[services.Service] = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(name: str) -> str:
        port = services.free_port()
        url = f"http://127.0.0.1:{port}"
        server = services.Service(
            name, [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
            {}, ready_url=f"{url}/index.html", url=url, log_path=LOG_DIR / f"{name}-{port}.log")
        started.append(server.start())
        server.wait_ready()
        return url

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def page_origins(serve: Callable[[str], str]) -> tuple[str, str]:
    """(allowed, other): the same page from two origins, only the first on the gateway's list."""
    return serve("page-allowed"), serve("page-other")


@pytest.fixture(scope="module")
def browser_edge(page_origins: tuple[str, str], start_edge: Callable[..., Edge]) -> Edge:
    # the page first: without chromium or npm the test skips before any service starts
    return start_edge(CORS_ALLOWED_ORIGINS=page_origins[0])


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start; the background
    # services would only knock on a closed network
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-quic", "--window-size=900,700"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for CORS messages
    driver_service = ChromeDriverService(executable_path=str(CHROMEDRIVER),
                                         log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=driver_service)
    yield driver
    driver.quit()


@dataclass
class Seen:
    """What the page showed when it was done."""

    email: str
    steps: dict[str, tuple[str, str]]  # step -> (data-state, data-detail)
    favorites: list[str]
    console: list[str]
    requests: list[tuple[object, object, object]]  # (method, path, status) in the gateway's access log


def run_page(driver: webdriver.Chrome, origin: str, edge: Edge, tmp_path: Path,
             capsys: pytest.CaptureFixture[str]) -> Seen:
    anime = ",".join(str(anime_id) for anime_id in edge.published[:2])
    logged_before = len(edge.access_log())
    driver.get(f"{origin}/index.html?{urlencode({'api': edge.url, 'anime': anime})}")
    try:
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "done"))
    except TimeoutException:
        pass  # the screenshot and the steps below say where it stopped
    finally:
        screenshot = tmp_path / "page.png"
        driver.save_screenshot(str(screenshot))
        with capsys.disabled():  # printed even when pytest captures output: CI keeps the file
            print(f"\nscreenshot of {origin}: {screenshot}")
    steps = {item.get_attribute("id").removeprefix("step-"):
             (item.get_attribute("data-state"), item.get_attribute("data-detail"))
             for item in driver.find_elements(By.CSS_SELECTOR, "#steps li")}
    return Seen(email=driver.find_element(By.ID, "email").text, steps=steps,
                favorites=[item.text for item in driver.find_elements(By.CSS_SELECTOR, "#favorites li")],
                console=[entry["message"] for entry in driver.get_log("browser")],
                requests=[(e["method"], e["path"], e["status"]) for e in edge.access_log()[logged_before:]])


def test_the_page_on_an_allowed_origin_signs_in_keeps_favorites_and_signs_out(
        browser_edge: Edge, page_origins: tuple[str, str], chromium: webdriver.Chrome,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    seen = run_page(chromium, page_origins[0], browser_edge, tmp_path, capsys)
    assert seen.steps == {
        "register": ("ok", ""), "login": ("ok", ""), "add-favorites": ("ok", "HTTP 201"),
        "list-favorites": ("ok", "2"), "logout": ("ok", ""), "after-logout": ("ok", "HTTP 401"),
    }, seen.console
    assert seen.favorites == ["Gateway title 0", "Gateway title 1"]  # embedded from the anime resource
    # one request lists the favorites with their titles (the preflights are the browser's own)
    assert [request for request in seen.requests if request[0] != "OPTIONS"] == [
        ("POST", "/auth/register", 201), ("POST", "/auth/login", 200), ("POST", "/favorites", 201),
        ("GET", "/favorites", 200), ("POST", "/auth/logout", 204), ("GET", "/favorites", 401)]
    with owner_connect(browser_edge.db) as conn:
        favorites = {anime_id for (anime_id,) in conn.execute(
            "select f.anime_id from data.favorites f join data.users u on u.id = f.user_id where u.email = %s",
            (seen.email,))}
        revoked = conn.execute(
            "select count(*) filter (where s.revoked_at is not null), count(*) from data.sessions s "
            "join data.users u on u.id = s.user_id where u.email = %s", (seen.email,)).fetchone()
    assert favorites == set(browser_edge.published[:2])
    assert revoked == (1, 2)  # register's session and login's, the one signed out


def test_the_same_page_on_an_origin_not_on_the_list_fails_visibly(
        browser_edge: Edge, page_origins: tuple[str, str], chromium: webdriver.Chrome,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    seen = run_page(chromium, page_origins[1], browser_edge, tmp_path, capsys)
    state, text = seen.steps["register"]
    # fetch() cannot tell a CORS refusal from a network error; the console can
    assert (state, text) == ("error", "Error: network or CORS refusal (Failed to fetch)"), seen.steps
    assert {name: seen.steps[name][0] for name in STEPS[1:]} == dict.fromkeys(STEPS[1:], "skipped")
    assert seen.favorites == []
    assert any("blocked by CORS policy" in message for message in seen.console), seen.console
    # the preflight got no CORS headers at the edge, so the registration itself was never sent
    assert seen.requests == [("OPTIONS", "/auth/register", 204)]
    with owner_connect(browser_edge.db) as conn:
        assert conn.execute("select count(*) from data.users where email = %s", (seen.email,)).fetchone() == (0,)
