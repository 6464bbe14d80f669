"""What researchers' own tools make of a release, offline: MLCommons' reference validator
(mlcroissant) reads croissant.json of a release and of the live API without an error or a warning
and reads the records through it; Hugging Face `datasets` loads a release by its card; and the
metadata says what the data may be used for (consent only, the data-use agreement)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

# No hub here, nor in CI: both libraries must work from local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import mlcroissant  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from fedserver.corpus.croissant import CONSENT_ONLY_TERM, croissant_document, render  # noqa: E402
from fedserver.corpus.export import export_release  # noqa: E402
from fedserver.corpus.terms import RESEARCHER_TERMS  # noqa: E402
from tests.corpus.conftest import World, manifest_of  # noqa: E402


@pytest.fixture
async def world_with_posts(world: World) -> World:
    await world.user("alice", train_ai="allow", license="CC-BY-4.0")
    await world.user("bob", train_ai="allow", license="CC0-1.0")
    await world.user("carol")
    await world.post("a", "alice", "hello #fediverse", language="en")
    await world.post("b", "bob", "bonjour @alice", language="fr")
    await world.post("c", "bob", "salut", language="fr")
    await world.post("d", "carol", "not in the corpus")
    return world


def validated(path: Path) -> mlcroissant.Dataset:
    dataset = mlcroissant.Dataset(jsonld=str(path))
    issues = dataset.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, issues.report()
    assert dataset.metadata.ctx.conforms_to.value == "http://mlcommons.org/croissant/1.1"
    return dataset


@pytest.mark.parametrize("format", ["jsonl", "parquet"])
async def test_mlcroissant_validates_a_release_and_reads_its_records(world_with_posts: World, tmp_path: Path, format):
    await export_release(world_with_posts.ctx, tmp_path / "release", format=format, shard_size=2)
    dataset = validated(tmp_path / "release" / "croissant.json")
    assert dataset.metadata.ctx.is_live_dataset in (False, None)
    records = list(dataset.records("records"))
    assert len(records) == manifest_of(tmp_path / "release")["records"] == 3
    texts = {r["records/text"].decode() if isinstance(r["records/text"], bytes) else r["records/text"]
             for r in records}
    assert texts == {"hello #fediverse", "bonjour @alice", "salut"}


async def test_mlcroissant_validates_the_live_api_description(world_with_posts: World, tmp_path: Path):
    path = tmp_path / "croissant.json"
    path.write_bytes(render(await croissant_document(world_with_posts.ctx)))
    dataset = validated(path)
    assert dataset.metadata.ctx.is_live_dataset is True


@pytest.mark.parametrize("format", ["jsonl", "parquet"])
async def test_datasets_loads_a_release_by_its_card(world_with_posts: World, tmp_path: Path, format):
    await export_release(world_with_posts.ctx, tmp_path / "release", format=format, shard_size=2)
    loaded = datasets.load_dataset(str(tmp_path / "release"), cache_dir=str(tmp_path / "hf-cache"))
    assert list(loaded) == ["train"]
    train = loaded["train"]
    assert train.num_rows == 3
    assert sorted(train["text"]) == ["bonjour @alice", "hello #fediverse", "salut"]
    assert {row["train-ai"] for row in train["author_choices"]} == {"allow"}


async def test_croissant_names_both_profiles_the_consent_only_condition_and_the_rai_fields(
        world_with_posts: World, tmp_path: Path):
    await export_release(world_with_posts.ctx, tmp_path / "release")
    release = json.loads((tmp_path / "release" / "croissant.json").read_text(encoding="utf-8"))
    live = await croissant_document(world_with_posts.ctx)
    for document, is_live in ((release, False), (live, True)):
        assert document["conformsTo"] == ["http://mlcommons.org/croissant/1.1", "http://mlcommons.org/croissant/RAI/1.0"]
        assert document["isLiveDataset"] is is_live
        terms = {u.get("termCode"): u for u in document["usageInfo"] if u["@type"] == "sc:DefinedTerm"}
        assert terms["consent-only"]["@id"] == CONSENT_ONLY_TERM
        assert "explicitly" in terms["consent-only"]["description"]
        [agreement] = [u for u in document["usageInfo"] if u["@type"] == "sc:CreativeWork"]
        assert agreement["version"] == RESEARCHER_TERMS.version and agreement["sha256"] == RESEARCHER_TERMS.sha256
        for name in ("rai:dataCollection", "rai:dataReleaseMaintenancePlan", "rai:dataCollectionTimeframe",
                     "rai:personalSensitiveInformation", "rai:dataUseCases"):
            assert document[name], name
        assert re.fullmatch(r"\S+/\S+", document["rai:dataCollectionTimeframe"])  # an ISO 8601 interval
        assert [k for k in document if k.startswith("rai:") and k not in RAI_TERMS] == []


# The property names of Croissant RAI 1.0 (mlcommons/croissant docs/croissant_rai.ttl).
RAI_TERMS = {f"rai:{name}" for name in (
    "dataCollection", "dataCollectionType", "dataCollectionMissingData", "dataCollectionRawData",
    "dataCollectionTimeframe", "dataPreprocessingProtocol", "dataManipulationProtocol", "dataImputationProtocol",
    "dataAnnotationProtocol", "dataAnnotationPlatform", "dataAnnotationAnalysis", "annotationsPerItem",
    "annotatorDemographics", "machineAnnotationTools", "personalSensitiveInformation", "dataSocialImpact",
    "dataBiases", "dataLimitations", "dataUseCases", "dataReleaseMaintenancePlan")}


async def test_the_cards_gated_access_fields_name_the_data_use_agreement(world_with_posts: World, tmp_path: Path):
    await export_release(world_with_posts.ctx, tmp_path / "release")
    readme = (tmp_path / "release" / "README.md").read_text(encoding="utf-8")
    card = yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", readme, re.S).group(1))
    for key in ("extra_gated_heading", "extra_gated_description", "extra_gated_prompt"):
        assert RESEARCHER_TERMS.version in card[key], key
    assert RESEARCHER_TERMS.sha256 in card["extra_gated_description"]
    assert "/api/corpus/v1/terms" in card["extra_gated_prompt"]
    fields = card["extra_gated_fields"]
    assert fields["Affiliation"] == "text" and fields["Purpose of use"] == "text"
    accept = [k for k, v in fields.items() if v == "checkbox" and RESEARCHER_TERMS.version in k]
    assert len(accept) == 1
