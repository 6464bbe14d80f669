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


def test_cli_export_at_another_gzip_level_is_the_same_release_with_the_level_in_the_manifest(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--config", str(config), "corpus", "export", "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()

    assert main(["--config", str(config), "corpus", "export", "--out", str(tmp_path / "two"), "--gzip-level", "9"]) == 0

    assert "corpus release 1.0.0 (unchanged since the last release: same version, same records" in \
        capsys.readouterr().out
    one, two = manifest_of(tmp_path / "one"), manifest_of(tmp_path / "two")
    assert (one["compression"]["level"], two["compression"]["level"]) == (1, 9)
    assert one["records_sha256"] == two["records_sha256"]
    assert main(["--config", str(config), "corpus", "verify", str(tmp_path / "two")]) == 0
    with pytest.raises(SystemExit) as refused:  # argparse: a bad argument exits with status 2
        main(["--config", str(config), "corpus", "export", "--out", str(tmp_path / "x"), "--gzip-level", "0"])
    assert refused.value.code == 2
