"""The failure-screenshot hooks (tests/browser/failure_screenshots.py) in a real inner pytest run: a
browser test that fails leaves full-page screenshots of every main page at 1280 and 390 px, and the
run says where they are; a run whose browser tests pass leaves none."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.browser.failure_screenshots import CHROMIUM, ENV_DIR, REPO

MAIN_PAGES = ("home", "profile", "thread", "search", "notifications", "settings", "consent", "admin")

INNER_CONFTEST = f'''
import pytest

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {{**browser_type_launch_args, "executable_path": "{CHROMIUM}"}}
'''

INNER_TESTS = '''
def test_the_heading_says_goodbye(page):
    page.set_content("<h1>Hello</h1>")
    assert page.locator("h1").inner_text() == "Goodbye"


def test_the_heading_says_hello(page):
    page.set_content("<h1>Hello</h1>")
    assert page.locator("h1").inner_text() == "Hello"
'''


def inner_pytest(directory: Path, shots: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in its own process on `directory`, with the screenshot hooks as a plugin."""
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "conftest.py").write_text(INNER_CONFTEST)
    (directory / "test_inner_browser.py").write_text(INNER_TESTS)
    env = {**os.environ, ENV_DIR: str(shots),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                           "tests.browser.failure_screenshots", "-c", str(directory / "pytest.ini"),
                           "--rootdir", str(directory), *args, str(directory)],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=600)


def test_a_failing_browser_test_leaves_screenshots_of_the_main_pages_at_both_widths(tmp_path: Path):
    shots = tmp_path / "ci-artifacts" / "screenshots"
    shots.mkdir(parents=True)
    (shots / "stale-1280.png").write_bytes(b"an earlier run's picture")
    inner = tmp_path / "inner"
    inner.mkdir()
    result = inner_pytest(inner, shots)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert "1 failed, 1 passed" in output, output[-4000:]
    assert f"16 screenshots of the main pages at 1280 px and 390 px are in {shots}" in output, output[-4000:]

    expected = {f"{name}-{width}.png" for name in MAIN_PAGES for width in (1280, 390)}
    assert {path.name for path in shots.iterdir()} == expected
    for name in expected:
        with Image.open(shots / name) as picture:
            width, height = picture.size
            # A whole page (full_page: at least the window's height), at the width it was taken at,
            # with something drawn on it (a blank page has a colour or two).
            assert width == int(name.rsplit("-", 1)[1].removesuffix(".png")), (name, picture.size)
            assert height >= (800 if width == 1280 else 844), (name, picture.size)
            assert len(picture.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 20, name


def test_a_run_whose_browser_tests_pass_takes_no_screenshots(tmp_path: Path):
    shots = tmp_path / "screenshots"
    inner = tmp_path / "inner"
    inner.mkdir()
    result = inner_pytest(inner, shots, "-k", "hello")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert not shots.exists()
