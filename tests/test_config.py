from __future__ import annotations

from pathlib import Path

import pytest

from fedserver.config import ConfigError, Settings, load_settings, render_default_config

REPO = Path(__file__).resolve().parent.parent


def test_repository_example_config_loads_with_safe_production_defaults():
    settings = load_settings(REPO / "fedserver.toml")
    # A fresh checkout serves its loopback domain over plain http: the printed URL opens at once.
    assert settings.instance.domain == "localhost:8080" and settings.instance.scheme == "http"
    assert settings.federation.allow_private_addresses is False
    assert settings.federation.authorized_fetch is False
    assert settings.server.password_hash_memory_kib == 65536  # Argon2's recommended 64 MiB
    # The example documents the defaults: loading it gives the same values as no file at all.
    defaults = Settings(base_dir=REPO)
    assert settings.federation == defaults.federation
    assert settings.server == defaults.server
    assert settings.uploads == defaults.uploads
    assert settings.corpus == defaults.corpus


@pytest.mark.parametrize("domain, scheme", [
    ("localhost:8080", "http"), ("127.0.0.1:9000", "http"), ("[::1]:8080", "http"), ("localhost", "http"),
    ("social.example", "https"), ("social.example:8443", "https"), ("localhost.example", "https"),
    ("127.0.0.1.nip.io", "https"),
])
def test_automatic_scheme_is_http_only_on_a_loopback_domain(tmp_path, domain, scheme):
    config = tmp_path / "fedserver.toml"
    config.write_text(render_default_config(domain=domain))
    assert load_settings(config).base_url == f"{scheme}://{domain}"


def test_an_explicit_scheme_wins_over_the_automatic_one(tmp_path):
    config = tmp_path / "fedserver.toml"
    config.write_text(render_default_config(domain="localhost:8080", scheme="https"))
    assert load_settings(config).base_url == "https://localhost:8080"


def test_relative_database_path_is_taken_relative_to_the_config_file(tmp_path):
    config = tmp_path / "conf" / "fedserver.toml"
    config.parent.mkdir()
    config.write_text(render_default_config())
    assert load_settings(config).database_path == config.parent / "fedserver.sqlite3"


@pytest.mark.parametrize("body, message", [
    ("[instance]\nscheme = 'ftp'\n", "scheme"),
    ("[server]\nport = 'eighty'\n", 'port must be a whole number \\(like 8080\\), not "eighty"'),
    ("[federation]\nno_such_key = 1\n", "unknown key"),
    ("[nonsense]\n", "unknown section"),
    ("this is = = not toml", "not valid TOML"),
    ("[federation]\ndelivery_concurrency = 0\n", "positive"),
    ("[server]\ntrusted_proxies = ['10.0.0.0/8', 'proxy.example']\n", "'proxy.example' is not an IP address"),
    ("[server]\ntrusted_proxies = '127.0.0.1'\n", "trusted_proxies must be a list"),


    ("[federation]\ninbox_replay_window_seconds = 3600\n", "at least 2 x signature_max_skew_seconds"),
    ("[federation]\ninbox_max_pending_per_host = 0\n", "positive"),
    ("[corpus]\nremoval_deadline_days = 0\n", "removal_deadline_days must be positive"),
    ("[server]\npassword_hash_memory_kib = 64\n", "password_hash_memory_kib must be 1024-4194304"),
])
def test_invalid_config_is_refused_with_a_message_naming_the_problem(tmp_path, body, message):
    config = tmp_path / "fedserver.toml"
    config.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_config_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigError, match="fedserver init"):
        load_settings(tmp_path / "absent.toml")
