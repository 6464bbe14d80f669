"""Pages are tested with many signed-in people: their accounts keep real, distinct signing keys
(from a pool generated once per session) and real Argon2 passwords, at Argon2's cheapest cost."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from fedserver.services import accounts

_key_pool: list[str] = []
_generate = accounts.generate_rsa_private_key_pem


@pytest.fixture(autouse=True)
def quick_accounts(monkeypatch):
    taken = 0

    def next_key() -> str:
        nonlocal taken
        if taken == len(_key_pool):
            _key_pool.append(_generate())
        taken += 1
        return _key_pool[taken - 1]

    monkeypatch.setattr(accounts, "generate_rsa_private_key_pem", next_key)
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
