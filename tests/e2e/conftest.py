"""Fixtures shared by the end-to-end tests."""
from tests.e2e.processes import fedserver_processes  # noqa: F401 (a fixture, used by name)
