"""Typed settings loaded from `fedserver.toml`, validated with messages a self-hoster can act on."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(Exception):
    """The configuration file is missing, unreadable or has an invalid value."""


@dataclass(frozen=True)
class InstanceSettings:
    domain: str = "localhost:8080"
    # "auto": http on a loopback domain (a first run on one's own computer), https on any other.
    scheme: str = "auto"
    name: str = "fedserver"
    description: str = "A fedserver instance"
    # open | approval | invite | closed: who may create an account through the web interface.
    registrations: str = "closed"
    # The language the compose form starts with for someone who has not chosen one yet (ISO 639-1).
    default_post_language: str = "en"
    # Polls: most options, shortest duration in seconds (the longest is seven days, as Mastodon's).
    poll_max_options: int = 4
    poll_min_expiry_seconds: int = 300


# [server] processes: more than a machine has cores only adds memory and lock contention.
MAX_PROCESSES = 64


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Client API: apps one address may register per hour (each is a stored row), per process.
    api_app_registrations_per_hour: int = 30
    processes: int = 1
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks); see client_address.py.
    trusted_proxies: tuple[str, ...] = ()
    # Sign-up attempts accepted from one client address per hour; more get 429.
    sign_ups_per_address_per_hour: int = 5
    # Argon2 memory cost (KiB) of new password hashes; existing hashes keep their own. Lower only for
    # tests: a cheaper hash is cheaper to crack if the database leaks.
    password_hash_memory_kib: int = 65536
    # Personal archives (zip of one's posts and media) one account may download per 24 hours.
    archive_downloads_per_day: int = 3
    # Lease on a claimed queue row (inbox, delivery) or periodic job, renewed every third of it
    # while held: how long a killed worker's work waits before another worker takes it over.
    worker_lease_seconds: float = 30.0
    # Streaming API, per process: streams per token and per client address; events a stream may
    # fall behind by before its reader is disconnected.
    streaming_connections_per_token: int = 8
    streaming_connections_per_address: int = 32
    streaming_queue_events: int = 500


@dataclass(frozen=True)
class DatabaseSettings:
    path: str = "fedserver.sqlite3"
    # postgresql://user@host/dbname selects PostgreSQL instead of the SQLite file at path.
    url: str = ""
    # PostgreSQL only: connections each process keeps open, at least and at most.
    pool_min_size: int = 1
    pool_max_size: int = 10
    # PostgreSQL only: a statement running longer is cancelled by the server.
    statement_timeout_ms: int = 30000
    # PostgreSQL only: idle workers and stream hubs are woken by LISTEN/NOTIFY; without a
    # notification they still look this often (seconds), for leases that ran out.
    listen_poll_seconds: float = 5.0
    # SQLite only: the page cache of each process's read connection (MiB).
    reader_cache_mib: int = 32


@dataclass(frozen=True)
class FederationSettings:
    authorized_fetch: bool = False
    # Off in production: refuses fetches and deliveries to loopback/private addresses (SSRF).
    allow_private_addresses: bool = False
    max_inbox_body_bytes: int = 1_048_576
    max_fetch_body_bytes: int = 1_048_576
    fetch_timeout_seconds: float = 10.0
    # Object and key fetches in flight at once per remote host (a slow host cannot take them all).
    fetch_per_host_concurrency: int = 4
    # A failed fetch is not repeated for this long, and a host failing 3 fetches in a row is paused as long.
    fetch_failure_cache_seconds: float = 60.0
    delivery_timeout_seconds: float = 15.0
    delivery_concurrency: int = 32
    delivery_per_host_concurrency: int = 4
    # Mastodon-like: ~16 attempts spread over about two days.
    delivery_max_attempts: int = 16
    # Multiplies every retry delay. 1.0 in production; tests shrink it to see retries in seconds.
    delivery_retry_scale: float = 1.0
    # Web Push to apps (api/push_delivery.py): deadline of one push, attempts before it is dropped
    # (retries back off from 30 s, doubling, times delivery_retry_scale).
    push_timeout_seconds: float = 10.0
    push_max_attempts: int = 8
    # A host whose deliveries keep failing on this many distinct days is skipped for a while.
    host_failure_days: int = 7
    signature_max_skew_seconds: int = 3900
    # How long a finished inbox item is kept so that its activity id is still recognised as a
    # duplicate (then pruned). At least 2 x signature_max_skew_seconds: a captured request is
    # accepted until its Date + skew, and its Date may be up to skew before its first arrival.
    # The rest covers senders still retrying an activity whose 202 they never saw (Mastodon backs
    # off over hours to days); a repeat after the window is applied again, which handlers tolerate.
    inbox_replay_window_seconds: int = 180_000
    # Inbox requests accepted per remote host per window (then 429 with Retry-After; Mastodon
    # retries). Counted per process, in memory.
    inbox_host_rate_limit: int = 3000
    inbox_host_rate_window_seconds: int = 60
    # A host with this many items waiting in the inbox queue gets 429 until the worker catches up.
    inbox_max_pending_per_host: int = 5000
    actor_refresh_seconds: int = 86_400
    user_agent_suffix: str = ""


@dataclass(frozen=True)
class CorpusSettings:
    # Researcher API requests allowed per researcher per minute (counted in the database).
    rate_limit_per_minute: int = 60
    # Days a researcher has to apply a removal and confirm it; the data-use terms state it, and a
    # researcher with an older unconfirmed removal gets no new data until they confirm.
    removal_deadline_days: int = 30


@dataclass(frozen=True)
class UploadSettings:
    # Pictures are decoded in a separate process (fedserver/image_worker.py) within these bounds.
    upload_max_pixels: int = 32_000_000
    upload_cpu_seconds: int = 10
    upload_memory_mb: int = 1024
    upload_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class MediaSettings:
    # Remote pictures (attachments, avatars) are fetched, cleaned and served from this server.
    media_dir: str = ""  # empty: "media" beside the database file
    remote_retention_days: int = 30
    media_max_remote_bytes: int = 16 * 1024 * 1024
    media_fetch_timeout_seconds: float = 30.0
    media_thumbnail_side: int = 400
    media_fetch_concurrency: int = 4
    # Video and audio (uploads and remote), probed and rewritten by ffmpeg in bounded processes.
    media_video_max_bytes: int = 40 * 1024 * 1024
    media_audio_max_bytes: int = 20 * 1024 * 1024
    media_av_cpu_seconds: int = 30
    media_av_memory_mb: int = 1024
    media_av_timeout_seconds: float = 60.0


@dataclass(frozen=True)
class Settings:
    instance: InstanceSettings = field(default_factory=InstanceSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    corpus: CorpusSettings = field(default_factory=CorpusSettings)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    # Directory of the config file: relative paths in it are taken relative to this.
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def base_url(self) -> str:
        return f"{self.instance.scheme}://{self.instance.domain}"

    @property
    def database_path(self) -> Path:
        path = Path(self.database.path)
        return path if path.is_absolute() else self.base_dir / path

    @property
    def media_dir(self) -> Path:
        if self.media.media_dir:
            path = Path(self.media.media_dir)
            return path if path.is_absolute() else self.base_dir / path
        return self.database_path.parent / "media"


_SECTIONS = {
    "instance": InstanceSettings,
    "server": ServerSettings,
    "database": DatabaseSettings,
    "federation": FederationSettings,
    "corpus": CorpusSettings,
    "uploads": UploadSettings,
    "media": MediaSettings,
}


# What a TOML value of each type looks like, said for people rather than in Python's type names.
_KINDS = {int: "a whole number (like 8080)", float: "a number (like 10.0)", str: 'text in quotes (like "example")',
          bool: "true or false", tuple: 'a list (like ["127.0.0.1"])'}


def _shown(value: Any) -> str:
    """A config value as it was written in TOML (text in quotes, lists in brackets)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return str(value)


def _coerce(section: str, cls: type, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"[{section}] has an unknown key “{key}”; known keys: {', '.join(sorted(known))}")
        default = getattr(cls(), key)
        expected = type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is tuple and isinstance(value, list):  # TOML arrays; tuples keep Settings hashable
            value = tuple(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            kind = _KINDS.get(expected, expected.__name__)
            raise ConfigError(f"[{section}] {key} must be {kind}, not {_shown(value)}")
        kwargs[key] = value
    return cls(**kwargs)


def validate(settings: Settings) -> Settings:
    inst = settings.instance
    if inst.scheme not in ("auto", "http", "https"):
        raise ConfigError(f"[instance] scheme must be \"auto\", \"https\" or \"http\", not \"{inst.scheme}\"")
    if not inst.domain or "/" in inst.domain or " " in inst.domain or _split_domain(inst.domain) is None:
        raise ConfigError(f"[instance] domain must be a host name with an optional :port, like social.example"
                          f" or localhost:8080, not \"{inst.domain}\"")
    if inst.scheme == "auto":
        settings = replace(settings, instance=replace(inst, scheme="http" if is_loopback_domain(inst.domain)
                                                      else "https"))
    if inst.registrations not in ("open", "approval", "invite", "closed"):
        raise ConfigError("[instance] registrations must be 'open', 'approval', 'invite' or 'closed'")
    if not (len(inst.default_post_language) == 2 and inst.default_post_language.isalpha()
            and inst.default_post_language.islower()):
        raise ConfigError("[instance] default_post_language must be a two-letter ISO 639-1 code like \"en\","
                          f" got {inst.default_post_language!r}")
    if not (2 <= inst.poll_max_options <= 20) or not (1 <= inst.poll_min_expiry_seconds <= 7 * 86400):
        raise ConfigError("[instance] poll_max_options must be 2-20 and poll_min_expiry_seconds 1-604800")
    if not (0 < settings.server.port < 65536):
        raise ConfigError(f"[server] port must be 1-65535, got {settings.server.port}")
    if not (1 <= settings.server.processes <= MAX_PROCESSES):
        raise ConfigError(f"[server] processes must be 1-{MAX_PROCESSES}, got {settings.server.processes}")
    _validate_trusted_proxies(settings.server.trusted_proxies)
    database = settings.database
    if database.url and not database.url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("[database] url must be a postgresql:// URL (or empty for the SQLite file at path)")
    if not (1 <= database.pool_min_size <= database.pool_max_size) or database.statement_timeout_ms <= 0:
        raise ConfigError("[database] pool_min_size must be at least 1 and at most pool_max_size,"
                          " and statement_timeout_ms positive")
    if not (0.1 <= database.listen_poll_seconds <= 3600):
        raise ConfigError(f"[database] listen_poll_seconds must be 0.1-3600, got {database.listen_poll_seconds}")
    if not (1 <= database.reader_cache_mib <= 65536):
        raise ConfigError(f"[database] reader_cache_mib must be 1-65536, got {database.reader_cache_mib}")
    if settings.server.sign_ups_per_address_per_hour <= 0:
        raise ConfigError("[server] sign_ups_per_address_per_hour must be positive")
    if not (1024 <= settings.server.password_hash_memory_kib <= 4_194_304):
        raise ConfigError("[server] password_hash_memory_kib must be 1024-4194304 (KiB), got"
                          f" {settings.server.password_hash_memory_kib}")
    if not (1 <= settings.server.worker_lease_seconds <= 3600):
        raise ConfigError(f"[server] worker_lease_seconds must be 1-3600, got {settings.server.worker_lease_seconds}")
    for name in ("streaming_connections_per_token", "streaming_connections_per_address", "streaming_queue_events"):
        if getattr(settings.server, name) <= 0:
            raise ConfigError(f"[server] {name} must be positive")
    if settings.server.api_app_registrations_per_hour <= 0:
        raise ConfigError("[server] api_app_registrations_per_hour must be positive")
    if settings.server.archive_downloads_per_day <= 0:
        raise ConfigError("[server] archive_downloads_per_day must be positive")
    fed = settings.federation
    for name in ("max_inbox_body_bytes", "max_fetch_body_bytes", "delivery_concurrency",
                 "delivery_per_host_concurrency", "delivery_max_attempts"):
        if getattr(fed, name) <= 0:
            raise ConfigError(f"[federation] {name} must be positive")
    if fed.push_timeout_seconds <= 0 or fed.push_max_attempts <= 0:
        raise ConfigError("[federation] push_timeout_seconds and push_max_attempts must be positive")
    if fed.fetch_timeout_seconds <= 0 or fed.delivery_timeout_seconds <= 0:
        raise ConfigError("[federation] timeouts must be positive")
    if fed.fetch_per_host_concurrency < 1 or fed.fetch_failure_cache_seconds < 0:
        raise ConfigError("[federation] fetch_per_host_concurrency must be at least 1 and"
                          " fetch_failure_cache_seconds not negative")
    for name in ("inbox_host_rate_limit", "inbox_host_rate_window_seconds", "inbox_max_pending_per_host"):
        if getattr(fed, name) <= 0:
            raise ConfigError(f"[federation] {name} must be positive")
    if fed.inbox_replay_window_seconds < 2 * fed.signature_max_skew_seconds:
        raise ConfigError("[federation] inbox_replay_window_seconds must be at least 2 x signature_max_skew_seconds"
                          f" ({2 * fed.signature_max_skew_seconds}): a signed request stays valid that long after"
                          " it first arrives, so a replay must still be recognised as a duplicate")
    if settings.corpus.rate_limit_per_minute <= 0:
        raise ConfigError("[corpus] rate_limit_per_minute must be positive")
    if settings.corpus.removal_deadline_days <= 0:
        raise ConfigError("[corpus] removal_deadline_days must be positive")
    up = settings.uploads
    if min(up.upload_max_pixels, up.upload_cpu_seconds, up.upload_timeout_seconds) <= 0 or up.upload_memory_mb < 256:
        raise ConfigError("[uploads] limits must be positive, and upload_memory_mb at least 256")
    media = settings.media
    if min(media.remote_retention_days, media.media_max_remote_bytes, media.media_fetch_timeout_seconds,
           media.media_thumbnail_side, media.media_fetch_concurrency) <= 0:
        raise ConfigError("[media] remote_retention_days, media_max_remote_bytes, media_fetch_timeout_seconds,"
                          " media_thumbnail_side and media_fetch_concurrency must be positive")
    if min(media.media_video_max_bytes, media.media_audio_max_bytes, media.media_av_cpu_seconds,
           media.media_av_timeout_seconds) <= 0 or media.media_av_memory_mb < 256:
        raise ConfigError("[media] media_video_max_bytes, media_audio_max_bytes, media_av_cpu_seconds and"
                          " media_av_timeout_seconds must be positive, and media_av_memory_mb at least 256")
    return settings


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _split_domain(domain: str) -> tuple[str, int | None] | None:
    """(host, port or None) of a `host[:port]` domain, or None when it is not one."""
    try:
        parts = urlsplit(f"//{domain}")
        return (parts.hostname or "", parts.port) if parts.hostname else None
    except ValueError:
        return None


def is_loopback_domain(domain: str) -> bool:
    """localhost, 127.0.0.1 or [::1] (with any port): this computer, where TLS is rarely set up."""
    split = _split_domain(domain)
    return split is not None and (split[0] in LOOPBACK_HOSTS or split[0].endswith(".localhost"))


def port_mismatch(settings: Settings, port: int) -> str | None:
    """Why serving on `port` would break this instance's links, or None when it would not.

    On a loopback domain nothing stands between browser and server, so a domain naming another port
    than the listening one makes every link, avatar and id point where nothing answers. Real domains
    are left alone: there a reverse proxy answers on 443 and forwards to whatever port this uses.
    So is a loopback domain behind a declared reverse proxy ([server] trusted_proxies): the proxy
    answers on the domain's port and forwards to this one (docs/scaling.md, several web processes
    behind one balancer)."""
    inst = settings.instance
    split = _split_domain(inst.domain)
    if split is None or not is_loopback_domain(inst.domain) or settings.server.trusted_proxies:
        return None
    host, named = split
    named = named or (443 if inst.scheme == "https" else 80)
    if named == port:
        return None
    shown = f"[{host}]" if ":" in host else host
    return (f"[instance] domain is {inst.domain}, so every link and id on this instance points at port {named}, "
            f"but it would listen on port {port}, where those links do not lead. Serve on port {named} "
            f"(leave out --port), or set domain = \"{shown}:{port}\" and port = {port} in the config file "
            f"(before creating accounts: their ids contain it). Behind a reverse proxy that answers on port {named}, "
            f"list it in [server] trusted_proxies.")


def _validate_trusted_proxies(values: tuple[str, ...]) -> None:
    from fedserver.client_address import parse_trusted_proxies

    if not all(isinstance(value, str) for value in values):
        raise ConfigError("[server] trusted_proxies must be a list of strings, like [\"127.0.0.1\"]")
    try:
        parse_trusted_proxies(values)
    except ValueError as exc:
        raise ConfigError(f"[server] trusted_proxies: {exc}") from None


def settings_from_dict(data: dict[str, Any], base_dir: Path) -> Settings:
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            raise ConfigError(f"unknown section [{name}]; known sections: {', '.join(_SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _coerce(name, _SECTIONS[name], value)
    return validate(Settings(base_dir=base_dir, **sections))


def load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; run `fedserver init` to create one") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return settings_from_dict(data, path.resolve().parent)


DEFAULT_CONFIG_TEMPLATE = """\
# fedserver configuration. Every key is optional; the values shown are the defaults
# unless said otherwise. Relative paths are taken relative to this file.

[instance]
# Host name (and :port when not 443/80) used in every id this server mints.
# Changing it later breaks federation: remote servers know your accounts by these ids.
domain = "{domain}"
# "auto": http on a loopback domain (localhost, 127.0.0.1, [::1]), so that a first run on your own
# computer opens in a browser at once; https on any other domain. Set "https" in production (behind
# a TLS reverse proxy); "http" on a real domain only for testing.
scheme = "{scheme}"
name = "fedserver"
description = "A fedserver instance"
# Who may sign up on the web: "open", "approval" (an admin approves each sign-up and its reason),
# "invite" (invite codes from the CLI) or "closed".
registrations = "closed"
# The language a new post is marked with until its author picks another (ISO 639-1, e.g. "en", "de").
default_post_language = "en"
# Polls in posts: most options a poll may have (Mastodon allows 4), and its shortest duration in
# seconds (Mastodon: 300, five minutes; the longest is always seven days).
poll_max_options = 4
poll_min_expiry_seconds = 300

[server]
# Address and port the HTTP server listens on. Keep 127.0.0.1 behind a reverse proxy.
host = "127.0.0.1"
port = {port}
# Apps (POST /api/v1/apps) one client address may register per hour, per serving process; more
# get 429. Each registration is a stored row, and an app needs one registration per install.
api_app_registrations_per_hour = 30
# Processes serving HTTP on that port. One answers about a core's worth of requests and is what a
# small instance needs (about 55 MB). With more, the first runs the background workers and the
# others only answer requests, sharing the socket and the database: for a busy instance with
# cores to spare, up to one per core.
processes = 1
# Reverse proxies (addresses or networks, e.g. ["127.0.0.1", "::1"]) whose X-Forwarded-For header
# names the client. Behind the reverse proxy described in the README, list the proxy's address here:
# otherwise every visitor looks like the proxy, and sign-in throttling and sign-up limits hit everyone
# at once. Never list addresses that untrusted clients can connect from. With a proxy listed, `serve`
# may listen on another port than a loopback domain names (the proxy answers on the domain's port).
trusted_proxies = []
# Sign-up attempts accepted from one client address per hour; more get 429.
sign_ups_per_address_per_hour = 5
# Argon2 memory cost, in KiB, of new password hashes (65536: Argon2's recommended 64 MiB, about
# 0.15 s of CPU per sign-up or sign-in). Existing hashes keep the cost they were made with. Lower it
# only for tests: a cheaper hash is cheaper to crack if the database ever leaks.
password_hash_memory_kib = 65536
# Personal archives (a zip of one's posts and media, built as it downloads) one account may
# download per 24 hours; more get 429.
archive_downloads_per_day = 3
# Background work (inbox, deliveries...) claimed by a worker is leased to it for this long, renewed
# while it works: a worker that dies (`fedserver worker`, or the server) loses nothing, and another
# takes its work over once the lease runs out (docs/scaling.md).
worker_lease_seconds = 30.0
# Streaming API (live timelines in apps), per serving process: open streams one access token, and
# one client address, may hold; and the events one stream may fall behind by before its reader,
# too slow to keep up, is disconnected (apps reconnect) instead of being buffered without limit.
streaming_connections_per_token = 8
streaming_connections_per_address = 32
streaming_queue_events = 500

[database]
# SQLite database file (WAL mode). Created on first run.
path = "fedserver.sqlite3"
# PostgreSQL instead of the SQLite file, for an instance that outgrows one machine: a URL such as
# "postgresql://fedserver@db.example/fedserver" (libpq's form; a password is better kept in
# ~/.pgpass or PGPASSWORD than here). Empty: SQLite. An empty database is set up on first start;
# after an upgrade run `fedserver migrate` once before starting the new version.
url = ""
# PostgreSQL connections each fedserver process keeps open: at least and at most.
pool_min_size = 1
pool_max_size = 10
# A PostgreSQL statement running longer than this (milliseconds) is cancelled.
statement_timeout_ms = 30000
# PostgreSQL: idle workers (and streaming) are woken at once by LISTEN/NOTIFY when work is queued
# anywhere; without a notification they still look this often (seconds), for leases that ran out.
listen_poll_seconds = 5.0
# SQLite: the page cache of each process's read connection, in MiB. Pages, timelines and search
# read posts from all over a large file; SQLite's default cache (2 MiB) holds few of them.
reader_cache_mib = 32

[federation]
# Require HTTP signatures on GETs of actors, posts and collections (Mastodon's "secure mode").
authorized_fetch = false
# Allow fetching from and delivering to loopback/private addresses. Keep false in production
# (it protects against SSRF); tests and local demos on 127.0.0.1 switch it on.
allow_private_addresses = {allow_private}
# Largest accepted inbox POST body; larger ones get 413.
max_inbox_body_bytes = 1048576
# Largest remote document we read when fetching actors and objects.
max_fetch_body_bytes = 1048576
# Timeout for fetching remote documents, in seconds.
fetch_timeout_seconds = 10.0
# Fetches of remote documents in flight at once per remote host.
fetch_per_host_concurrency = 4
# Seconds a failed fetch is remembered (not repeated), and a host that failed 3 fetches in a row
# is not asked; 0 turns this off.
fetch_failure_cache_seconds = 60.0
# Timeout for one delivery POST, in seconds.
delivery_timeout_seconds = 15.0
# Deliveries in flight at once, in total and per remote host.
delivery_concurrency = 32
delivery_per_host_concurrency = 4
# Attempts per delivery before giving up (exponential back-off over about two days).
delivery_max_attempts = 16
# Multiplies every retry delay; keep 1.0 (tests shrink it).
delivery_retry_scale = 1.0
# Web Push to apps: seconds one push may take, and attempts before a push is dropped (retries back
# off from 30 s, doubling, times delivery_retry_scale).
push_timeout_seconds = 10.0
push_max_attempts = 8
# Distinct days of failed deliveries after which a host is marked unavailable.
host_failure_days = 7
# Accepted clock difference for signed requests, in seconds (Mastodon: 1 h + 5 min).
signature_max_skew_seconds = 3900
# Seconds a processed inbox activity's id is remembered as a duplicate, then pruned. At least
# 2 x signature_max_skew_seconds (a signed request can be replayed that long); the rest covers
# senders still retrying an activity whose answer they missed.
inbox_replay_window_seconds = 180000
# Inbox requests accepted per remote host per window of seconds; more get 429 and a Retry-After.
inbox_host_rate_limit = 3000
inbox_host_rate_window_seconds = 60
# Inbox items from one host waiting to be processed; at this many its requests get 429.
inbox_max_pending_per_host = 5000
# Refetch cached remote actors older than this, in seconds.
actor_refresh_seconds = 86400

[corpus]
# Researcher API requests allowed per researcher per minute.
rate_limit_per_minute = 60
# Days a researcher has to apply a removal and confirm it (stated in the data-use terms); past
# it, they get no new data until they confirm.
removal_deadline_days = 30

[uploads]
# Uploaded pictures are decoded and written again (without metadata) in a separate process, one at
# a time, within these bounds. Largest picture: width x height x frames, in pixels (animations
# count every frame); larger ones are refused before anything is decoded.
upload_max_pixels = 32000000
# CPU seconds one picture may take, and the memory the decoding process may use, in MB.
upload_cpu_seconds = 10
upload_memory_mb = 1024
# Wall-clock seconds after which a picture still decoding is given up (the process is stopped).
upload_timeout_seconds = 30.0

[media]
# Where uploaded and cached pictures are stored; empty means a "media" folder beside the database.
media_dir = ""
# Pictures of other servers (attachments, avatars) are fetched by this server, cleaned like uploads
# and served from here, so that pages never make readers' browsers ask other servers. Cached copies
# older than this many days are removed by `fedserver media prune` (and daily by the server); they
# are fetched again when someone looks. Local media is never removed.
remote_retention_days = 30
# Largest remote picture fetched, in bytes; larger ones are refused.
media_max_remote_bytes = 16777216
# Seconds one remote picture may take to arrive.
media_fetch_timeout_seconds = 30.0
# Thumbnails shown in timelines are at most this many pixels wide and high.
media_thumbnail_side = 400
# Remote pictures fetched at once by the media cache's worker.
media_fetch_concurrency = 4
# Video (MP4, MOV, WebM) and audio (MP3, Ogg, M4A, FLAC), uploaded or sent by other servers, are
# probed with ffprobe and written again without metadata by ffmpeg (Debian's ffmpeg package; without
# it, video and audio are refused and remote ones stay links). Largest video and audio file taken,
# in bytes (uploads and remote files alike).
media_video_max_bytes = 41943040
media_audio_max_bytes = 20971520
# Each ffprobe/ffmpeg run may use this many seconds of CPU and MB of memory; a file still being
# processed after media_av_timeout_seconds (wall clock, all steps together) is refused.
media_av_cpu_seconds = 30
media_av_memory_mb = 1024
media_av_timeout_seconds = 60.0
"""


def render_default_config(domain: str = "localhost:8080", scheme: str = "auto", port: int = 8080,
                          allow_private: bool = False) -> str:
    return DEFAULT_CONFIG_TEMPLATE.format(domain=domain, scheme=scheme, port=port,
                                          allow_private="true" if allow_private else "false")


def with_overrides(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """Return settings with some section fields replaced (used by tests and the CLI)."""
    updated = settings
    for name, values in sections.items():
        updated = replace(updated, **{name: replace(getattr(updated, name), **values)})
    return validate(updated)
