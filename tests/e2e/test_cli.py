"""The `fedserver` command as a self-hoster uses it: real subprocesses, real config files and SQLite
databases, and `serve` processes answering HTTP on loopback ports."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from fedserver.config import load_settings
from fedserver.services.accounts import verify_password
from tests.conftest import free_port
from tests.e2e.processes import ProcessGroup, ServerProcess, set_config_keys, wait_for
from tests.e2e.web_client import Visitor

AS2 = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def get_as2(url: str) -> tuple[int, dict[str, Any] | None]:
    request = urllib.request.Request(url, headers={"Accept": AS2})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, None


def follow_state(server: ServerProcess, follower_uri: str, followee_uri: str) -> str | None:
    return server.value(
        "SELECT f.state FROM follows f JOIN actors a ON a.id = f.follower_id JOIN actors b ON b.id = f.followee_id"
        " WHERE a.uri = ? AND b.uri = ?", (follower_uri, followee_uri))


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two serving instances shared by this module's tests (each test uses its own account names)."""
    group = ProcessGroup(tmp_path_factory.mktemp("pair"))
    try:
        a, b = group("a"), group("b")
        a.start()
        b.start()
        yield a, b
    finally:
        group.close()


# --- init, serve, migrate ---------------------------------------------------------------

def test_init_writes_config_and_creates_the_database(tmp_path: Path):
    server = ServerProcess(tmp_path / "site", port=18080)
    result = server.run("init", "--domain", "social.example", "--port", "18080")
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [f"wrote {server.config} and created {server.database}"]
    config = tomllib.loads(server.config.read_text(encoding="utf-8"))
    # "auto": https on a real domain (production stays safe), http only on loopback ones.
    assert (config["instance"]["domain"], config["instance"]["scheme"]) == ("social.example", "auto")
    assert load_settings(server.config).base_url == "https://social.example"
    assert config["server"]["port"] == 18080
    assert config["federation"]["allow_private_addresses"] is False
    assert server.value("SELECT count(*) FROM schema_migrations") >= 1
    assert server.value("SELECT count(*) FROM local_accounts WHERE is_instance_actor = 1") == 1


def test_init_twice_without_force_fails_with_a_clear_message(tmp_path: Path):
    server = ServerProcess(tmp_path / "site")
    server.run("init", "--domain", "social.example", check=True)
    original = server.config.read_text(encoding="utf-8")

    again = server.run("init", "--domain", "other.example")
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: {server.config} exists; use --force to overwrite it"
    assert server.config.read_text(encoding="utf-8") == original

    forced = server.run("init", "--domain", "other.example", "--force")
    assert forced.returncode == 0, forced.stderr
    assert 'domain = "other.example"' in server.config.read_text(encoding="utf-8")


def test_serve_in_an_empty_folder_creates_config_and_database_and_prints_its_url(tmp_path: Path):
    server = ServerProcess(tmp_path / "fresh")
    try:
        server.start("--port", str(server.port))
        output = lines(server.stdout())
        assert output[0] == f"created {server.config} with default settings: edit [instance] domain before federating"
        assert output[1] == (f"fedserver is running: open http://localhost:{server.port}/ in a browser"
                             f" (listening on 127.0.0.1:{server.port}, database {server.database})")
        status, nodeinfo = get_as2(f"http://127.0.0.1:{server.port}/.well-known/nodeinfo")
        assert status == 200 and nodeinfo and nodeinfo["links"]
    finally:
        exit_status = server.terminate()
    assert exit_status == 0, server.logs()
    assert server.config.exists() and server.database.exists()


def test_serve_on_a_port_in_use_exits_1_with_a_clear_message(pair, tmp_path: Path):
    a, _ = pair
    result = ServerProcess(tmp_path / "second").run("serve", "--port", str(a.port), timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"error: cannot listen on 127.0.0.1:{a.port}: Address already in use")
    assert "Traceback" not in result.stderr and "fedserver is running" not in result.stdout


def test_migrate_twice_is_fine(pair):
    server, _ = pair
    applied = server.value("SELECT count(*) FROM schema_migrations")
    for _ in range(2):
        result = server.run("migrate")
        assert result.returncode == 0, result.stderr
        assert lines(result.stdout) == ["database is up to date"]
    assert server.value("SELECT count(*) FROM schema_migrations") == applied


# --- accounts ---------------------------------------------------------------------------

def test_user_create_prints_a_generated_password_that_logs_in_and_user_list_shows_the_account(pair):
    server, _ = pair
    result = server.run("user", "create", "carl", "--admin")
    assert result.returncode == 0, result.stderr
    created, password_line = lines(result.stdout)
    assert created == f"created {server.handle('carl')} ({server.actor_uri('carl')})"
    assert password_line.startswith("password: ")
    password = password_line.removeprefix("password: ")
    assert len(password) >= 16
    stored_hash = server.value("SELECT password_hash FROM local_accounts WHERE username = 'carl'")
    assert verify_password(stored_hash, password)

    listed = server.run("user", "list", check=True)
    assert f"{server.handle('carl')}\t{server.actor_uri('carl')}\tadmin" in lines(listed.stdout)


def test_user_create_with_password_file_uses_that_password(pair, tmp_path: Path):
    server, _ = pair
    secret = tmp_path / "secret.txt"
    secret.write_text("correct horse battery staple\n", encoding="utf-8")
    result = server.run("user", "create", "dana", "--locked", "--password-file", str(secret))
    assert result.returncode == 0, result.stderr
    assert "password:" not in result.stdout
    stored_hash = server.value("SELECT password_hash FROM local_accounts WHERE username = 'dana'")
    assert verify_password(stored_hash, "correct horse battery staple")
    assert f"{server.handle('dana')}\t{server.actor_uri('dana')}\tlocked" in server.run("user", "list").stdout

    secret.write_text("short\n", encoding="utf-8")
    too_short = server.run("user", "create", "dino", "--password-file", str(secret))
    assert too_short.returncode == 1
    assert "at least 8 characters" in too_short.stderr

    missing = server.run("user", "create", "dino", "--password-file", str(tmp_path / "nope.txt"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: cannot read password file {tmp_path / 'nope.txt'}: No such file or directory"


def test_creating_a_taken_username_exits_1(pair):
    server, _ = pair
    server.run("user", "create", "erin", check=True)
    for name in ("erin", "Erin"):
        again = server.run("user", "create", name)
        assert again.returncode == 1
        assert again.stderr.strip() == "error: the username “erin” is taken"
    assert server.value("SELECT count(*) FROM local_accounts WHERE username = 'erin'") == 1


def test_invalid_username_exits_1(pair):
    server, _ = pair
    for name in ("no spaces", "dash-ed", "x" * 31):
        result = server.run("user", "create", name)
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: “{name}” cannot be a username")
        assert "Traceback" not in result.stderr


def test_post_by_an_unknown_local_user_exits_1(pair):
    server, _ = pair
    posts = server.value("SELECT count(*) FROM posts")
    result = server.run("post", "ghost", "boo")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: there is no account named “ghost” here"
    assert server.value("SELECT count(*) FROM posts") == posts


# --- posts, served over HTTP ---------------------------------------------------------------

def test_post_prints_an_id_that_dereferences_as_a_note(pair):
    a, _ = pair
    a.run("user", "create", "paula", check=True)
    result = a.run("post", "paula", "Hello from the command line")
    assert result.returncode == 0, result.stderr
    [uri] = lines(result.stdout)
    assert uri.startswith(f"{a.actor_uri('paula')}/statuses/")

    status, note = get_as2(uri)
    assert status == 200 and note is not None
    assert (note["type"], note["id"], note["attributedTo"]) == ("Note", uri, a.actor_uri("paula"))
    assert "Hello from the command line" in note["content"]
    assert note["to"] == [PUBLIC]


def test_post_visibility_content_warning_and_reply_to_are_published(pair):
    a, _ = pair
    a.run("user", "create", "quinn", check=True)
    [first] = lines(a.run("post", "quinn", "Opening thoughts", check=True).stdout)

    [reply] = lines(a.run("post", "quinn", "A quiet follow-up", "--visibility", "unlisted", "--cw", "spoilers",
                          "--reply-to", first, check=True).stdout)
    status, note = get_as2(reply)
    assert status == 200 and note is not None
    assert note["inReplyTo"] == first
    assert (note["summary"], note["sensitive"]) == ("spoilers", True)
    assert note["to"] == [f"{a.actor_uri('quinn')}/followers"] and PUBLIC in note["cc"]

    [private] = lines(a.run("post", "quinn", "Followers only", "--visibility", "followers", check=True).stdout)
    status, _ = get_as2(private)
    assert status == 404  # an anonymous reader may not see a followers-only post
    assert a.value("SELECT visibility FROM posts WHERE uri = ?", (private,)) == "followers"

    missing = a.run("post", "quinn", "Into the void", "--reply-to", f"{a.actor_uri('quinn')}/statuses/1")
    assert missing.returncode == 1 and missing.stderr.startswith("error: cannot reply")


def test_delete_makes_the_post_answer_410_gone(pair):
    a, _ = pair
    a.run("user", "create", "rosa", check=True)
    [uri] = lines(a.run("post", "rosa", "Regrettable", check=True).stdout)
    assert get_as2(uri)[0] == 200

    result = a.run("delete", "rosa", uri)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [f"deleted {uri}"]
    status, doc = get_as2(uri)
    assert status == 410 and doc is not None and doc["type"] == "Tombstone"
    again = a.run("delete", "rosa", uri)
    assert again.returncode == 1 and "already deleted" in again.stderr


# --- federation from the command line ---------------------------------------------------------

def test_follow_between_two_serving_processes_is_accepted_and_posts_arrive(pair):
    a, b = pair
    a.run("user", "create", "alice", check=True)
    b.run("user", "create", "bob", check=True)

    # The CLI process queues the Follow in b's database; b's serve process delivers it.
    result = b.run("follow", "bob", a.handle("alice"))
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [f"bob follows {a.handle('alice')}: pending"]
    wait_for(lambda: follow_state(b, b.actor_uri("bob"), a.actor_uri("alice")) == "accepted",
             what="Accept processed at b")
    assert follow_state(a, b.actor_uri("bob"), a.actor_uri("alice")) == "accepted"

    [uri] = lines(a.run("post", "alice", "Hello, bob", check=True).stdout)
    wait_for(lambda: b.value("SELECT content_text FROM posts WHERE uri = ?", (uri,)), what="post delivered to b")

    again = b.run("follow", "bob", a.handle("alice"), check=True)
    assert lines(again.stdout) == [f"bob follows {a.handle('alice')}: accepted"]


def test_follow_requests_to_a_locked_account_are_listed_approved_and_rejected(pair):
    a, b = pair
    a.run("user", "create", "lena", "--locked", check=True)
    for name in ("ben", "bea"):
        b.run("user", "create", name, check=True)
        b.run("follow", name, a.handle("lena"), check=True)
    wait_for(lambda: a.value("SELECT count(*) FROM follows f JOIN actors a ON a.id = f.followee_id"
                             " WHERE a.uri = ? AND f.state = 'pending'", (a.actor_uri("lena"),)) == 2,
             what="two follow requests at a")
    listed = a.run("requests", "list", "lena", check=True)
    assert sorted(lines(listed.stdout)) == sorted(f"{b.handle(n)}\t{b.actor_uri(n)}" for n in ("ben", "bea"))

    approved = a.run("requests", "approve", "lena", b.handle("ben"))
    assert approved.returncode == 0, approved.stderr
    assert lines(approved.stdout) == [f"approved {b.handle('ben')}"]
    rejected = a.run("requests", "reject", "lena", b.handle("bea"), check=True)
    assert lines(rejected.stdout) == [f"rejected {b.handle('bea')}"]

    wait_for(lambda: follow_state(b, b.actor_uri("ben"), a.actor_uri("lena")) == "accepted",
             what="Accept processed at b")
    wait_for(lambda: follow_state(b, b.actor_uri("bea"), a.actor_uri("lena")) is None, what="Reject processed at b")
    assert lines(a.run("requests", "list", "lena", check=True).stdout) == []
    twice = a.run("requests", "approve", "lena", b.handle("ben"))
    assert twice.returncode == 1 and "no pending follow request" in twice.stderr


def test_follow_to_an_unreachable_host_exits_1_with_a_clear_message(pair):
    server, _ = pair
    server.run("user", "create", "uma", check=True)
    dead = f"@nobody@127.0.0.1:{free_port()}"
    result = server.run("follow", "uma", dead)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: could not find {dead}: its server could not be reached (it may be"
                                    " down, or the address may be wrong)")
    assert "Traceback" not in result.stderr
    assert server.value("SELECT count(*) FROM follows f JOIN actors a ON a.id = f.follower_id"
                        " WHERE a.uri = ?", (server.actor_uri("uma"),)) == 0


# Runs `fedserver ARGS...` (sys.argv[1:]) in this interpreter, then names the web libraries it loaded.
LOADED_WEB_LIBRARIES = """
import runpy, sys
try:
    runpy.run_module("fedserver", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    assert not exit.code, exit.code
print(" ".join(sorted(m for m in ("aiohttp", "jinja2") if m in sys.modules)) or "none", file=sys.stderr)
"""


@pytest.mark.parametrize("args", [("--help",), ("user", "list"), ("status",), ("researcher", "list"),
                                  ("corpus", "export", "--out", "release")])
def test_commands_that_neither_serve_nor_fetch_start_without_the_web_stack(fedserver_processes, args):
    # aiohttp and Jinja2 were most of every command's start-up (~0.25 s of ~0.4 s before any work).
    server = fedserver_processes("a")
    config = () if args == ("--help",) else ("--config", str(server.config))
    result = subprocess.run([sys.executable, "-c", LOADED_WEB_LIBRARIES, *config, *args], cwd=server.directory,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "none"


# --- errors the person can fix ------------------------------------------------------------

@pytest.mark.parametrize("args", [
    (),
    ("frobnicate",),
    ("post", "alice"),
    ("post", "alice", "hi", "--visibility", "everyone"),
])
def test_bad_arguments_exit_2_with_usage(fedserver_processes, args):
    server = fedserver_processes("a", init=False)
    result = server.run(*args)
    assert result.returncode == 2
    assert "usage: fedserver" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("config_text, message", [
    ("[instance\ndomain = 'x'\n", "not valid TOML"),
    ("[instance]\ndomian = 'social.example'\n", "unknown key “domian”"),
    ("[server]\nport = 'eighty'\n", 'port must be a whole number (like 8080), not "eighty"'),
])
def test_broken_config_exits_2_naming_the_file(fedserver_processes, config_text, message):
    server = fedserver_processes("a", init=False)
    server.directory.mkdir(parents=True)
    server.config.write_text(config_text, encoding="utf-8")
    result = server.run("user", "list")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {server.config}")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_exits_2_and_suggests_init(fedserver_processes):
    server = fedserver_processes("a", init=False)
    result = server.run("user", "list")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: config file {server.config} does not exist;"
                                     " run `fedserver init` to create one")


# --- admin ----------------------------------------------------------------------------------

def test_status_shows_queue_depth_and_failing_hosts(fedserver_processes):
    a, b = fedserver_processes("a"), fedserver_processes("b")
    fresh = a.run("status", check=True)
    assert lines(fresh.stdout) == ["deliveries: 0 pending, 0 delivered, 0 failed", "inbox: 0 pending",
                                   "failing hosts: none",
                                   "media: 0 local files, 0.0 MB; 0 cached remote pictures, 0.0 MB"]
    a.start()
    b.start()
    a.run("user", "create", "alice", check=True)
    b.run("user", "create", "bob", check=True)
    b.run("follow", "bob", a.handle("alice"), check=True)
    wait_for(lambda: follow_state(b, b.actor_uri("bob"), a.actor_uri("alice")) == "accepted", what="follow accepted")

    b.terminate()
    a.run("post", "alice", "Is anybody out there?", check=True)
    wait_for(lambda: a.value("SELECT count(*) FROM host_failure_days WHERE host = ?", (b.domain,)),
             what="a failed delivery to b")
    report = lines(a.run("status", check=True).stdout)
    assert report[0] == "deliveries: 1 pending, 1 delivered, 0 failed"
    assert report[1] == "inbox: 0 pending"
    assert report[2] == "failing hosts:"
    assert report[3].startswith(f"  {b.domain}\tfailing\tfailure days: 1\tlast failure: ")


def test_domain_block_add_list_remove(pair):
    server, _ = pair
    assert lines(server.run("domain-block", "list", check=True).stdout) == []
    added = server.run("domain-block", "add", "Spam.Example", "--reason", "spam waves")
    assert added.returncode == 0, added.stderr
    assert lines(added.stdout) == ["blocked spam.example and its subdomains: 0 follows ended,"
                                   " 0 pending deliveries cancelled"]
    server.run("domain-block", "add", "other.example", check=True)
    assert lines(server.run("domain-block", "list", check=True).stdout) == ["other.example\t", "spam.example\tspam waves"]

    removed = server.run("domain-block", "remove", "spam.example", check=True)
    assert lines(removed.stdout) == ["unblocked spam.example"]
    assert lines(server.run("domain-block", "list", check=True).stdout) == ["other.example\t"]


async def test_password_hashes_take_the_configured_argon2_cost_and_older_hashes_still_sign_in(
        fedserver_processes):
    server = fedserver_processes("a", password_hash_memory_kib=65536)
    secret = server.directory / "password.txt"
    secret.write_text("a long enough password", encoding="utf-8")
    server.run("user", "create", "olde", "--password-file", str(secret), check=True)
    set_config_keys(server.config, password_hash_memory_kib=2048)
    server.run("user", "create", "newt", "--password-file", str(secret), check=True)
    stored = dict(server.query("SELECT username, password_hash FROM local_accounts"
                               " WHERE username IN ('olde', 'newt')"))
    assert stored["olde"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert stored["newt"].startswith("$argon2id$v=19$m=2048,t=3,p=4$")
    await server.astart()
    for name in ("olde", "newt"):  # each hash verifies with the parameters stored in it
        visitor = Visitor(server.base)
        try:
            assert (await visitor.sign_in(name, "not the password")).status == 401
            assert (await visitor.sign_in(name, "a long enough password")).status == 303
        finally:
            await visitor.close()
