"""Sign-in throttling behind the README's reverse proxy: the real `fedserver serve` with
`[server] trusted_proxies = ["127.0.0.1"]`, and visitors whose requests carry X-Forwarded-For as
the proxy would write it. An attacker's failures slow the attacker's address down and never keep
the owner out; a peer that is not a trusted proxy cannot choose its address by sending the header;
unknown names cost as much time as wrong passwords; sign-ups are limited per address."""
from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import pytest

from tests.e2e.processes import ServerProcess, set_config_keys
from tests.e2e.web_client import Visitor

PASSWORD = "the owner's long passphrase"
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"


@pytest.fixture
async def server(fedserver_processes, tmp_path: Path) -> ServerProcess:
    server = fedserver_processes("proxied")
    set_config_keys(server.config, trusted_proxies=["127.0.0.1"])
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    server.run("user", "create", "olive", "--password-file", str(secret), check=True)
    await server.astart()
    return server


async def test_failed_sign_ins_from_one_forwarded_address_slow_it_down_but_never_lock_the_owner_out(server):
    async with Visitor(server.base, forwarded_for=ATTACKER) as attacker:
        answers = [await attacker.sign_in("olive", f"guess {n}") for n in range(30)]
        statuses = [a.status for a in answers]
        assert set(statuses) <= {401, 429}, statuses
        assert statuses[:5] == [401] * 5, statuses  # a few typos are free
        assert statuses.count(429) >= 20, statuses  # then the address waits, longer and longer
        refused = next(a for a in answers if a.status == 429)
        assert int(refused.headers["Retry-After"]) >= 1
        # While it waits, even the right password from that address is not checked.
        assert (await attacker.sign_in("olive", PASSWORD)).status == 429

    # The owner, from their own address behind the same proxy, signs in at once.
    async with Visitor(server.base, forwarded_for=OWNER) as owner:
        signed_in = await owner.sign_in("olive", PASSWORD, next_path="/settings/profile")
        assert signed_in.status == 303 and signed_in.location == "/settings/profile", signed_in
        home = await owner.get("/home")
        assert home.status == 200 and "Sign out" in home.text

    # Another visitor who mistypes once on the attacked account is only slowed by seconds.
    async with Visitor(server.base, forwarded_for="192.0.2.44") as typo:
        assert (await typo.sign_in("olive", "oops")).status == 401
        wait = await typo.sign_in("olive", PASSWORD)
        if wait.status == 429:
            assert int(wait.headers["Retry-After"]) <= 2
            await asyncio.sleep(int(wait.headers["Retry-After"]) + 0.2)
            wait = await typo.sign_in("olive", PASSWORD)
        assert wait.status == 303


async def test_forwarded_for_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(server):
    # 127.0.0.2 is not in trusted_proxies: whatever X-Forwarded-For it sends, it is 127.0.0.2.
    statuses = []
    for n in range(12):
        async with Visitor(server.base, forwarded_for=f"198.18.0.{n + 1}", source="127.0.0.2") as spoofer:
            statuses.append((await spoofer.sign_in("olive", f"guess {n}")).status)
    assert statuses[:5] == [401] * 5 and statuses[6:] == [429] * 6, statuses
    # The throttle held 127.0.0.2, not the addresses it named, nor anyone behind the proxy.
    async with Visitor(server.base, forwarded_for="198.18.0.20") as proxied:
        assert (await proxied.sign_in("olive", PASSWORD)).status == 303


async def test_unknown_usernames_take_as_long_to_refuse_as_wrong_passwords(server):
    async def timed(username: str, n: int) -> float:
        # A fresh address each time: the back-off must not be what is measured.
        async with Visitor(server.base, forwarded_for=f"100.64.{len(username)}.{n + 1}") as visitor:
            await visitor.get("/auth/sign_in")
            answer = await visitor.sign_in(username, "not the password")
            assert answer.status == 401
            return answer.seconds

    known = [await timed("olive", n) for n in range(5)]
    unknown = [await timed("nobody_here", n) for n in range(5)]
    # Argon2 runs for both (tens of milliseconds); without it an unknown name answered in ~2 ms.
    assert statistics.median(unknown) >= 0.5 * statistics.median(known), (known, unknown)


async def test_sign_ups_from_one_address_are_limited(fedserver_processes):
    server = fedserver_processes("open")
    set_config_keys(server.config, trusted_proxies=["127.0.0.1"], registrations="open",
                    sign_ups_per_address_per_hour=3)
    await server.astart()
    statuses = []
    for n in range(5):
        async with Visitor(server.base, forwarded_for=ATTACKER) as bot:
            statuses.append((await bot.sign_up(f"bot{n}", "a good long password")).status)
    assert statuses == [303, 303, 303, 429, 429]
    assert server.value("SELECT count(*) FROM local_accounts WHERE username LIKE 'bot%'") == 3
    # Someone else behind the same proxy still signs up.
    async with Visitor(server.base, forwarded_for=OWNER) as person:
        joined = await person.sign_up("person", "a good long password")
        assert joined.status == 303 and joined.location == "/home"
