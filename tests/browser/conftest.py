"""Browser tests: Playwright drives Debian's Chromium against real `fedserver serve` processes."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.browser.failure_screenshots import (  # noqa: F401 (hooks: main pages photographed on failure)
    pytest_runtest_makereport, pytest_sessionfinish, pytest_terminal_summary)
from tests.e2e.processes import ProcessGroup, ServerProcess, set_config_keys

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: .ci/run installs it (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (open sign-up, where the browser's person lives) and `there` (a remote server)."""
    group = ProcessGroup(tmp_path_factory.mktemp("browser"))
    here, there = group("here"), group("there")
    # Every test signs a new person up from 127.0.0.1: more than the production limit per address.
    set_config_keys(here.config, registrations="open", sign_ups_per_address_per_hour=1000)
    try:
        here.start()
        there.start()
        yield here, there
    finally:
        group.close()


@pytest.fixture
def two_servers(tmp_path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """a (where the picture is posted) and b (where the reader lives), both open for sign-up."""
    group = ProcessGroup(tmp_path)
    a, b = group("a"), group("b")
    for server in (a, b):
        set_config_keys(server.config, registrations="open", sign_ups_per_address_per_hour=1000)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        group.close()
