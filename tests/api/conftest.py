"""Client API tests: a real `fedserver serve` process, apps driven by Mastodon.py (as an app would
drive it), and Debian's Chromium (Playwright) for the person on the authorization page."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.processes import ProcessGroup, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: .ci/run installs it (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One instance with alice (an administrator, the instance's contact) and bob."""
    group = ProcessGroup(tmp_path_factory.mktemp("api"))
    here = group("here")
    secret = here.directory / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    here.run("user", "create", "alice", "--admin", "--password-file", str(secret), check=True)
    here.run("user", "create", "bob", "--password-file", str(secret), check=True)
    try:
        here.start()
        yield here
    finally:
        group.close()
