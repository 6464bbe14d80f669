"""`fedserver db copy --to postgresql://...`: an instance that started on SQLite moves to PostgreSQL
with everything it held, and serves the same afterwards."""
from __future__ import annotations

import json
import re
import urllib.request

from tests import engines
from tests.e2e.processes import ServerProcess, set_config_keys, wait_for

pytestmark = engines.postgresql_only


def _get_json(url: str) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/activity+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _on_sqlite(server: ServerProcess) -> ServerProcess:
    server.init()
    set_config_keys(server.config, url="")  # whatever --engine says: this instance starts small
    return server


def test_an_sqlite_instance_copied_to_postgresql_serves_the_same_and_its_consent_log_verifies(tmp_path):
    a, b = _on_sqlite(ServerProcess(tmp_path / "a")), _on_sqlite(ServerProcess(tmp_path / "b"))
    try:
        a.start()
        b.start()
        a.run("user", "create", "alice", check=True)
        b.run("user", "create", "bob", check=True)
        b.run("follow", "bob", a.handle("alice"), check=True)
        wait_for(lambda: a.value("SELECT count(*) FROM follows WHERE state = 'accepted'") == 1, what="the follow")
        a.run("consent", "set", "alice", "--train-ai", "allow", "--license", "CC-BY-4.0", "--scope", "all",
              check=True)
        a.run("consent", "set", "alice", "--train-ai", "allow", "--license", "CC0-1.0", "--scope", "future",
              check=True)
        [post] = a.run("post", "alice", "before the move", check=True).stdout.split()
        a.run("researcher", "add", "lab", check=True)
        wait_for(lambda: b.value("SELECT count(*) FROM posts WHERE uri = ?", (post,)) == 1, what="the post at b")
        before = {
            "outbox": _get_json(a.actor_uri("alice") + "/outbox")["totalItems"],
            "followers": _get_json(a.actor_uri("alice") + "/followers")["totalItems"],
            "post": _get_json(post)["content"],
            "log": a.run("consent", "log", "alice", "--verify", check=True).stdout,
            "researchers": a.run("researcher", "list", check=True).stdout.split("\t")[0],
        }
        a.terminate()

        url = engines.fresh_postgres_url(migrated=False)
        copied = a.run("db", "copy", "--to", url, check=True, timeout=120)
        events = int(re.search(r"verified: (\d+) events", before["log"]).group(1))
        assert f"counts match; consent log verified ({events} events" in copied.stdout
        assert "copied posts: 1 rows" in copied.stdout and "copied follows: 1 rows" in copied.stdout
        again = a.run("db", "copy", "--to", url)
        assert again.returncode == 1 and "is not empty" in again.stderr

        set_config_keys(a.config, url=url)
        a.start()
        assert _get_json(a.actor_uri("alice") + "/outbox")["totalItems"] == before["outbox"]
        assert _get_json(a.actor_uri("alice") + "/followers")["totalItems"] == before["followers"] == 1
        assert _get_json(post)["content"] == before["post"]
        assert a.run("consent", "log", "alice", "--verify", check=True).stdout == before["log"]  # same chain, same head
        assert a.run("researcher", "list", check=True).stdout.split("\t")[0] == before["researchers"]
        # New rows draw ids after the copied ones, and federation carries on from the new database.
        [later] = a.run("post", "alice", "after the move", check=True).stdout.split()
        wait_for(lambda: b.value("SELECT count(*) FROM posts WHERE uri = ?", (later,)) == 1,
                 what="a post made on PostgreSQL arriving at b")
        a.run("consent", "set", "alice", "--train-ai", "deny", check=True)
        assert f"consent log verified: {events + 1} events" in a.run("consent", "log", "alice", "--verify", check=True).stdout
    finally:
        a.kill()
        b.kill()
