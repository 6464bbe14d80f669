"""`fedserver corpus export` and `fedserver corpus verify` as an admin runs them."""
from __future__ import annotations

from pathlib import Path

import pytest

from fedserver.cli import main
from tests.corpus.conftest import manifest_of, read_jsonl_shards


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "fedserver.toml"
    assert main(["--config", str(path), "init", "--domain", "127.0.0.1:8999", "--scheme", "http"]) == 0
    password = tmp_path / "password"
    password.write_text("correct horse battery staple", encoding="utf-8")
    for name in ("alice", "bob"):
        assert main(["--config", str(path), "user", "create", name, "--password-file", str(password)]) == 0
    assert main(["--config", str(path), "consent", "set", "alice", "--train-ai", "allow", "--license", "CC0-1.0",
                 "--scope", "all"]) == 0
    assert main(["--config", str(path), "post", "alice", "alice agrees"]) == 0
    assert main(["--config", str(path), "post", "bob", "bob does not"]) == 0
    capsys.readouterr()
    return path


def test_cli_export_writes_a_release_that_cli_verify_accepts(config: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "release"

    assert main(["--config", str(config), "corpus", "export", "--out", str(out), "--shard-size", "10"]) == 0
    printed = capsys.readouterr().out
    assert "corpus release 1.0.0" in printed and "1 records in 1 shard(s)" in printed
    assert [r["text"] for r in read_jsonl_shards(out)] == ["alice agrees"]
    assert manifest_of(out)["version"] == "1.0.0"

    assert main(["--config", str(config), "corpus", "verify", str(out)]) == 0
    assert "release verified" in capsys.readouterr().out


def test_cli_verify_fails_with_status_3_naming_the_altered_file(config: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "release"
    assert main(["--config", str(config), "corpus", "export", "--out", str(out)]) == 0
    card = out / "README.md"
    card.write_text(card.read_text(encoding="utf-8").replace("CC0-1.0", "CC-BY-4.0"), encoding="utf-8")
    capsys.readouterr()

    assert main(["--config", str(config), "corpus", "verify", str(out)]) == 3
    assert "FAILED: README.md: checksum does not match the manifest" in capsys.readouterr().out


def test_cli_verify_with_another_public_key_fails(config: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    from fedserver.activitypub.keys import generate_rsa_private_key_pem, public_pem_from_private

    out = tmp_path / "release"
    assert main(["--config", str(config), "corpus", "export", "--out", str(out)]) == 0
    key = tmp_path / "other.pem"
    key.write_text(public_pem_from_private(generate_rsa_private_key_pem()), encoding="utf-8")
    capsys.readouterr()

    assert main(["--config", str(config), "corpus", "verify", str(out), "--public-key", str(key)]) == 3
    assert "signature does not verify" in capsys.readouterr().out


def test_cli_export_into_a_foreign_directory_is_an_error_message(config: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "home"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")

    assert main(["--config", str(config), "corpus", "export", "--out", str(out)]) == 1
    assert "not part of a corpus release" in capsys.readouterr().err
