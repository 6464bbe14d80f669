"""Screenshots of the main pages, at a desktop's and a phone's width, kept as CI artefacts whenever a
browser test fails (issue 16: "screenshots of the main pages at both widths kept as CI artefacts on
failure").

A failing browser test only shows the page it was on (pytest-playwright's own screenshot in
test-results/); these show what every main page looked like in the same run. The hooks below are
registered by tests/browser/conftest.py; once the session ends with a failed browser test, a child
process (`python -m tests.browser.failure_screenshots DIR`) starts a fresh `fedserver serve`, gives
it a little of everything (posts, a reply, a like, a follower, an admin) and has Chromium save a
full-page PNG of each page at 1280 and 390 px into DIR: `ci-artifacts/screenshots/` under the
repository (git-ignored), or $FEDSERVER_SCREENSHOTS_DIR. A child process, so that Playwright's and
the tests' event loops, and anything that broke in them, cannot stop the screenshots being taken.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ENV_DIR = "FEDSERVER_SCREENSHOTS_DIR"
WIDTHS = {1280: 800, 390: 844}  # width -> viewport height (a desktop; a phone, as issue 16 tries it)
# Playwright's fixtures: a test using one (directly or through another fixture) drives a browser.
PLAYWRIGHT_FIXTURES = frozenset({"page", "context", "browser", "browser_type", "playwright"})
_FAILED_KEY = pytest.StashKey[list]()
_WRITTEN_KEY = pytest.StashKey[Path]()
PASSWORD = "correct horse battery"


def screenshots_dir(config: pytest.Config | None = None) -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    return (config.rootpath if config is not None else REPO) / "ci-artifacts" / "screenshots"


def _is_browser_test(item: pytest.Item) -> bool:
    return ("tests/browser/" in item.nodeid.replace("\\", "/")
            or not PLAYWRIGHT_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and _is_browser_test(item):
        item.config.stash.setdefault(_FAILED_KEY, []).append(item.nodeid)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    failed = session.config.stash.get(_FAILED_KEY, [])
    if not failed:
        return
    out = screenshots_dir(session.config)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    try:
        result = subprocess.run([sys.executable, "-m", "tests.browser.failure_screenshots", str(out)], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:  # the test report matters more than the pictures
        sys.stderr.write(f"\nScreenshots of the main pages could not be taken: {exc}\n")
        return
    if result.returncode == 0:
        session.config.stash[_WRITTEN_KEY] = out
    else:
        sys.stderr.write(f"\nScreenshots of the main pages could not be taken (exit {result.returncode}):\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}\n")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    written = config.stash.get(_WRITTEN_KEY, None)
    if written is not None:
        count = len(list(written.glob("*.png")))
        terminalreporter.write_line(f"A browser test failed: {count} screenshots of the main pages at "
                                    f"{' and '.join(f'{w} px' for w in WIDTHS)} are in {written}")


# -- the child process: a seeded server and Chromium ------------------------------------------------

def _seed(server) -> dict[str, str]:
    """An admin (alice) with posts, a reply from bob, a like and a follow from bob (notifications):
    every main page has something on it. Returns the paths to photograph, by page name."""
    secret = server.directory / "password"
    secret.write_text(PASSWORD)
    server.run("user", "create", "alice", "--admin", "--password-file", str(secret), check=True)
    server.run("user", "create", "bob", "--password-file", str(secret), check=True)
    server.run("follow", "bob", server.handle("alice"), check=True)
    first = server.run("post", "alice", "Hello from the screenshots: a first post #fediverse", check=True)
    first_uri = first.stdout.strip()
    server.run("post", "bob", "A reply, so the thread has two posts", "--reply-to", first_uri, check=True)
    server.run("like", "bob", first_uri, check=True)
    server.run("post", "alice", "A second post, with a longer text to show how lines wrap on a phone "
               "and on a desktop alike.", check=True)
    post_id = server.value("SELECT id FROM posts WHERE uri = ?", (first_uri,))
    return {"home": "/home", "profile": "/@alice", "thread": f"/@alice/{post_id}", "search": "/search?q=post",
            "notifications": "/notifications", "settings": "/settings/profile", "consent": "/settings/consent",
            "admin": "/admin"}


def take(out: Path) -> list[Path]:
    """Start a seeded server and save a full-page screenshot of each main page at each width."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.processes import ProcessGroup

    if out.exists():
        for old in out.glob("*.png"):
            old.unlink()  # a previous run's pictures would pass for this one's
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="screenshots-") as scratch:
        group = ProcessGroup(Path(scratch))
        try:
            server = group("shots")
            server.start()
            pages = _seed(server)
            with sync_playwright() as playwright:
                launch = {"executable_path": str(CHROMIUM)} if CHROMIUM.exists() else {}
                browser = playwright.chromium.launch(**launch)
                try:
                    for width, height in WIDTHS.items():
                        context = browser.new_context(viewport={"width": width, "height": height})
                        page = context.new_page()
                        page.goto(f"{server.base}/auth/sign_in")
                        page.get_by_label("Username").fill("alice")
                        page.get_by_label("Password").fill(PASSWORD)
                        page.get_by_role("button", name="Sign in").click()
                        page.wait_for_url(re.compile(r"/home$"))
                        for name, path in pages.items():
                            page.goto(server.base + path)
                            target = out / f"{name}-{width}.png"
                            page.screenshot(path=str(target), full_page=True)
                            written.append(target)
                        context.close()
                finally:
                    browser.close()
        finally:
            group.close()
    return written


if __name__ == "__main__":
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else screenshots_dir()
    for path in take(directory):
        print(path)
