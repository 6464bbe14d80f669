"""Pages are tested with many signed-in people: their accounts keep real, distinct signing keys
(from a pool generated once per session) and real Argon2 passwords, at Argon2's cheapest cost."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from fedserver.services import accounts
from tests.conftest import use_key_pool


@pytest.fixture(autouse=True)
def quick_accounts(monkeypatch):
    use_key_pool(monkeypatch)
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
