"""croissant.json and the dataset card: what a researcher's tools and eyes read about a release."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rdflib import RDF, Graph, Literal, Namespace

from fedserver.corpus.croissant import croissant_document
from fedserver.corpus.export import export_release
from fedserver.corpus.terms import CONSENT_TERMS, RESEARCHER_TERMS
from tests.corpus.conftest import World, manifest_of, read_jsonl_shards

SC = Namespace("https://schema.org/")
CR = Namespace("http://mlcommons.org/croissant/")
RAI = Namespace("http://mlcommons.org/croissant/RAI/")
DCT = Namespace("http://purl.org/dc/terms/")


@pytest.fixture
async def release(world: World, tmp_path: Path) -> Path:
    await world.user("alice", train_ai="allow", license="CC-BY-4.0")
    await world.user("bob", train_ai="allow", license="CC0-1.0")
    await world.post("a", "alice", "hello #fediverse", language="en")
    await world.post("b", "bob", "bonjour @alice", language="fr")
    await world.post("c", "bob", "salut", language="fr")
    await export_release(world.ctx, tmp_path / "release", shard_size=2)
    return tmp_path / "release"


def croissant_graph(root: Path) -> tuple[Graph, object]:
    graph = Graph().parse(data=(root / "croissant.json").read_text(encoding="utf-8"), format="json-ld",
                          base=root.as_uri() + "/")
    [dataset] = list(graph.subjects(RDF.type, SC.Dataset))
    return graph, dataset


def front_matter(readme: str) -> str:
    match = re.match(r"^---\n(.*?)\n---\n", readme, re.S)
    assert match, "README.md starts with YAML front matter"
    return match.group(1)


async def test_croissant_parses_as_json_ld_with_the_required_croissant_properties(release: Path):
    graph, dataset = croissant_graph(release)
    manifest = manifest_of(release)

    assert str(graph.value(dataset, SC.name)) == manifest["name"]
    assert str(graph.value(dataset, SC.version)) == "1.0.0"
    assert {str(o) for o in graph.objects(dataset, DCT.conformsTo)} >= {"http://mlcommons.org/croissant/1.1"}
    assert {str(o) for o in graph.objects(dataset, SC.license)} == {
        "https://creativecommons.org/licenses/by/4.0/", "https://creativecommons.org/publicdomain/zero/1.0/"}
    for prop in (SC.description, SC.url, SC.creator, SC.datePublished):
        assert graph.value(dataset, prop) is not None, prop
    assert str(graph.value(dataset, SC.datePublished)) == manifest["created_at"]
    assert graph.value(dataset, CR.recordSet) is not None
    shard_sums = {f["sha256"] for f in manifest["files"] if f["path"].startswith("data/")}
    distributed = {str(graph.value(d, SC.sha256)) for d in graph.objects(dataset, SC.distribution)
                   if (d, RDF.type, CR.FileObject) in graph}
    assert shard_sums and shard_sums <= distributed
    assert any((d, RDF.type, CR.FileSet) in graph for d in graph.objects(dataset, SC.distribution))


async def test_croissant_carries_the_responsible_ai_fields_with_the_consent_wording(release: Path):
    graph, dataset = croissant_graph(release)

    assert CONSENT_TERMS.text in str(graph.value(dataset, RAI.dataCollection))
    for prop in (RAI.dataCollectionType, RAI.personalSensitiveInformation, RAI.dataUseCases,
                 RAI.dataReleaseMaintenancePlan, RAI.dataLimitations, RAI.dataBiases):
        assert str(graph.value(dataset, prop) or "").strip(), prop


async def test_croissant_record_set_describes_every_record_key(release: Path):
    document = json.loads((release / "croissant.json").read_text(encoding="utf-8"))
    [records] = [r for r in document["recordSet"] if r["@id"] == "records"]
    record = read_jsonl_shards(release)[0]

    assert {f["name"] for f in records["field"]} == set(record)
    nested = {f["name"]: {s["name"] for s in f.get("subField", [])} for f in records["field"]}
    assert nested["consent_event"] == set(record["consent_event"])
    assert nested["author_choices"] == set(record["author_choices"])


async def test_croissant_for_the_api_describes_the_live_endpoints_without_checksums(world: World):
    await world.user("alice", train_ai="allow")
    await world.post("a", "alice", "live")

    document = await croissant_document(world.ctx)

    assert document["isLiveDataset"] is True
    urls = {d["contentUrl"] for d in document["distribution"]}
    assert f"{world.ctx.settings.base_url}/api/corpus/v1/records" in urls
    assert not any("sha256" in d for d in document["distribution"])
    graph = Graph().parse(data=json.dumps(document), format="json-ld")
    assert len(list(graph.subjects(RDF.type, SC.Dataset))) == 1
    assert (None, SC.version, Literal("1.0.0", lang="en")) in graph


async def test_dataset_card_has_front_matter_and_the_exact_consent_wording(release: Path):
    readme = (release / "README.md").read_text(encoding="utf-8")
    meta = front_matter(readme)

    # Two licences among the records: Hub licence "other" with the details.
    assert re.search(r"^license: other$", meta, re.M)
    assert re.search(r"^license_name: ", meta, re.M) and "CC0-1.0 (2 records)" in meta
    assert re.search(r"^- \"en\"$", meta, re.M) and re.search(r"^- \"fr\"$", meta, re.M)
    assert re.search(r"^- n<1K$", meta, re.M) and re.search(r"^- text-generation$", meta, re.M)
    assert 'path: "data/train-*.jsonl.gz"' in meta
    assert CONSENT_TERMS.text.rstrip("\n") in readme
    assert CONSENT_TERMS.version in readme and CONSENT_TERMS.sha256 in readme
    assert RESEARCHER_TERMS.text.rstrip("\n") in readme
    for section in ("## Motivation", "## Composition", "## Collection process", "### What is excluded",
                    "## Licences", "## Removal policy", "## Maintenance and versioning"):
        assert section in readme
    assert "followers-only" in readme.lower() and "direct messages" in readme


async def test_dataset_card_front_matter_is_valid_yaml_with_a_single_spdx_licence(world: World, tmp_path: Path):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    await world.user("alice", train_ai="allow", license="CC-BY-SA-4.0")
    await world.post("a", "alice", "only one licence here", language="de")
    await export_release(world.ctx, tmp_path / "release")

    meta = yaml.safe_load(front_matter((tmp_path / "release" / "README.md").read_text(encoding="utf-8")))

    assert meta["license"] == "cc-by-sa-4.0"
    assert meta["language"] == ["de"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["configs"] == [{"config_name": "default",
                                "data_files": [{"split": "train", "path": "data/train-*.jsonl.gz"}]}]


async def test_croissant_of_a_release_with_removals_describes_them_as_a_record_set(world: World, tmp_path: Path):
    await world.user("alice", train_ai="allow")
    await world.post("a", "alice", "soon withdrawn")
    await export_release(world.ctx, tmp_path / "v1")
    await world.consent("alice", "deny")
    await export_release(world.ctx, tmp_path / "v2")

    def record_sets(root: Path) -> dict[str, dict]:
        document = json.loads((root / "croissant.json").read_text(encoding="utf-8"))
        return {r["@id"]: r for r in document["recordSet"]}

    assert set(record_sets(tmp_path / "v1")) == {"records"}  # nothing removed yet
    removals = record_sets(tmp_path / "v2")["removals"]
    assert {f["name"] for f in removals["field"]} == {"record_id", "reason", "removed_at"}
    [record_id] = [f for f in removals["field"] if f["name"] == "record_id"]
    assert record_id["references"] == {"field": {"@id": "records/record_id"}}
    assert record_id["source"]["fileObject"] == {"@id": "removals.jsonl"}
