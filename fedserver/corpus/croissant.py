"""The corpus described as MLCommons Croissant 1.1 JSON-LD with the Responsible-AI fields, for an
offline release (its shard files, with checksums) or for the live researcher API (its endpoints).
The document is built as a dict and checked by parsing it with rdflib as JSON-LD."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rdflib import RDF, Graph, Namespace

from fedserver.context import Context
from fedserver.corpus import card
from fedserver.corpus.card import REMOVAL_FIELDS, RECORD_FIELDS, DatasetFacts, Field
from fedserver.corpus.manifest import plan_release
from fedserver.corpus.signals import NAMESPACE
from fedserver.corpus.sync import reconcile
from fedserver.corpus.terms import CONSENT_TERMS, LICENSE_URLS, LICENSES, RESEARCHER_TERMS

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
RAI_CONFORMS_TO = "http://mlcommons.org/croissant/RAI/1.0"
MEDIA_TYPE = f'application/ld+json; profile="{CONFORMS_TO}"'
API_PATH = "/api/corpus/v1"
JSONL = "application/jsonlines"
PARQUET = "application/x-parquet"

SC = Namespace("https://schema.org/")
CR = Namespace("http://mlcommons.org/croissant/")
RAI = Namespace("http://mlcommons.org/croissant/RAI/")
DCT = Namespace("http://purl.org/dc/terms/")

# Appendix 1 of the Croissant 1.1 specification (with the 1.0 keys mlcroissant still lists), plus our
# consent namespace and PROV-O. schema.org with https, as mlcroissant (the reference validator) and
# the Hugging Face Hub's documents use it.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "fedserver": NAMESPACE,
    "annotation": "cr:annotation",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "excludes": "cr:excludes",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "readLines": "cr:readLines",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sdVersion": "cr:sdVersion",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "unArchive": "cr:unArchive",
    "value": "cr:value",
}

REQUIRED = (SC.name, SC.description, SC.license, SC.url, SC.creator, SC.datePublished, SC.version,
            DCT.conformsTo, SC.distribution, CR.recordSet)


class CroissantError(Exception):
    """The document we built is not valid Croissant (a bug: it never reaches a researcher)."""


@dataclass(frozen=True)
class DistributionFile:
    """One file (or endpoint) of the dataset. holds says which RecordSet reads it: records,
    removals, or nothing ("other"). sha256 only for files that will not change."""
    id: str
    content_url: str
    encoding_format: str
    sha256: str | None = None
    content_size: int | None = None
    description: str = ""
    holds: str = "records"


def api_files(base_url: str) -> list[DistributionFile]:
    """The live researcher API as the dataset's distribution (no checksums: it changes)."""
    api = f"{base_url}{API_PATH}"
    # Ids distinct from the RecordSets' ("records", "removals"): JSON-LD would merge two nodes
    # with one @id into one, which mlcroissant then cannot read.
    return [
        DistributionFile("api-records", f"{api}/records", JSONL, description="Full snapshot of the corpus as JSON "
                         "Lines (bearer token; the data-use agreement must be accepted first)."),
        DistributionFile("api-changes", f"{api}/changes", "application/json", holds="other",
                         description="Records added, updated and removed (with reason) since a cursor."),
    ]


async def croissant_document(ctx: Context, *, files: list[DistributionFile] | None = None,
                             facts: DatasetFacts | None = None, records_glob: str | None = None) -> dict[str, Any]:
    """Croissant JSON-LD for the corpus. Without files it describes the live API endpoints
    (isLiveDataset, no checksums) and reads the corpus as it is now, after reconciling; its version
    is the one an export of the current state gets. An export passes its files (with checksums),
    the facts of its snapshot and the glob matching its shards."""
    if facts is None:
        await reconcile(ctx)
        facts = await card.gather_facts(ctx, ctx.db.reader, await plan_release(ctx.db.reader))
    document = build_document(facts, api_files(facts.base_url) if files is None else files,
                              records_glob=records_glob, live=files is None)
    parse_and_check(document, base=facts.base_url + API_PATH + "/")
    return document


def build_document(facts: DatasetFacts, files: list[DistributionFile], *, records_glob: str | None,
                   live: bool) -> dict[str, Any]:
    # An empty corpus still states the licences its records can carry.
    licences = [LICENSE_URLS[k] for k in (facts.license_ids or LICENSES)]
    publisher = {"@type": "sc:Organization", "name": facts.instance_name, "url": facts.base_url}
    distribution, records_source = _distribution(files, records_glob)
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": facts.name,
        "alternateName": facts.pretty_name,
        "description": card.description(facts),
        "conformsTo": [CONFORMS_TO, RAI_CONFORMS_TO],
        "license": licences if len(licences) != 1 else licences[0],
        "url": f"{facts.base_url}{API_PATH}/croissant.json",
        "creator": publisher,
        "publisher": publisher,
        "datePublished": facts.created_at,
        "dateModified": facts.created_at,
        "version": facts.version,
        "isLiveDataset": live,
        "inLanguage": facts.language_codes,
        "keywords": ["fediverse", "ActivityPub", "social media", "opt-in", "consent", "text"],
        "citeAs": _cite_as(facts),
        "usageInfo": usage_info(facts.base_url),
        "distribution": distribution,
        "recordSet": _record_sets(files, records_source),
        "rai:dataCollection": (
            "Opt-in by each author. Training use is off by default; an author turns it on by an explicit act, "
            "choosing a licence and whether earlier public posts are included, after being shown this text "
            f"(version {CONSENT_TERMS.version}, SHA-256 {CONSENT_TERMS.sha256}):\n\n{CONSENT_TERMS.text}\n"
            "Every change is appended to a hash-chained consent log; each record names the event that "
            "authorised it. " + card.EXCLUDED),
        "rai:dataCollectionType": ["User-generated content data", "Explicit opt-in consent"],
        "rai:dataCollectionRawData": "Posts as stored by the ActivityPub server, latest edited version.",
        "rai:dataPreprocessingProtocol": card.PSEUDONYMISATION,
        "rai:personalSensitiveInformation": card.PSEUDONYMISATION,
        "rai:dataUseCases": card.USE_CASES,
        "rai:dataLimitations": card.LIMITATIONS,
        "rai:dataBiases": card.BIASES,
        "rai:dataReleaseMaintenancePlan": card.MAINTENANCE + " " + card.REMOVAL_POLICY,
        "fedserver:consentTermsVersion": CONSENT_TERMS.version,
        "fedserver:consentTermsSha256": CONSENT_TERMS.sha256,
        "fedserver:consentLogHead": facts.consent_head,
        "fedserver:corpusCursor": facts.plan.seq,
        "fedserver:researcherTermsVersion": RESEARCHER_TERMS.version,
        "fedserver:removalPolicy": card.REMOVAL_POLICY,
    }
    if facts.first_published and facts.last_published:
        document["rai:dataCollectionTimeframe"] = f"{facts.first_published}/{facts.last_published}"
        document["temporalCoverage"] = document["rai:dataCollectionTimeframe"]
    if facts.plan.previous_version:
        document["fedserver:previousVersion"] = facts.plan.previous_version
    return document


CONSENT_ONLY_TERM = NAMESPACE + "consent-only"


def usage_info(base_url: str) -> list[dict[str, Any]]:
    """Croissant 1.1 usage conditions (sc:usageInfo): the consent-only condition as a defined term
    (no DUO term says it: DUO describes what a donor's consent allows, not that nothing else is in
    the data), and the data-use agreement that binds the researcher."""
    return [
        {"@type": "sc:DefinedTerm", "@id": CONSENT_ONLY_TERM, "termCode": "consent-only",
         "name": "Consent only: every record's author explicitly opted in to AI training",
         "description": "Holds only posts whose authors explicitly allowed their use to train AI models, each "
                        "under the licence its author chose; use them for that purpose only, and apply every "
                        "removal (withdrawal, deletion, exclusion) as the data-use agreement requires.",
         "inDefinedTermSet": NAMESPACE + "usage-conditions",
         "url": f"{base_url}/about/consent"},
        {"@type": "sc:CreativeWork", "name": f"Data-use agreement {RESEARCHER_TERMS.version}",
         "text": RESEARCHER_TERMS.text, "url": f"{base_url}{API_PATH}/terms",
         "version": RESEARCHER_TERMS.version, "sha256": RESEARCHER_TERMS.sha256},
    ]


def _cite_as(facts: DatasetFacts) -> str:
    key = facts.name.replace("-", "_")
    return (f"@misc{{{key}_{facts.version.replace('.', '_')}, title = {{{facts.pretty_name}}}, "
            f"author = {{{facts.instance_name}}}, year = {{{facts.created_at[:4]}}}, version = {{{facts.version}}}, "
            f"url = {{{facts.base_url}{API_PATH}/croissant.json}}}}")


def _distribution(files: list[DistributionFile], records_glob: str | None) -> tuple[list[dict], dict]:
    entries = []
    for f in files:
        entry: dict[str, Any] = {"@type": "cr:FileObject", "@id": f.id, "name": f.id.rsplit("/", 1)[-1],
                                 "contentUrl": f.content_url, "encodingFormat": f.encoding_format}
        if f.description:
            entry["description"] = f.description
        if f.sha256:
            entry["sha256"] = f.sha256
        if f.content_size is not None:
            entry["contentSize"] = f"{f.content_size} B"
        entries.append(entry)
    record_files = [f for f in files if f.holds == "records"]
    if records_glob:
        entries.append({"@type": "cr:FileSet", "@id": "train-shards", "name": "train-shards",
                        "description": "All shards of the train split.", "includes": records_glob,
                        "encodingFormat": record_files[0].encoding_format if record_files else JSONL})
        return entries, {"fileSet": {"@id": "train-shards"}}
    if len(record_files) != 1:
        raise CroissantError("records come from one file, or from a glob over several")
    return entries, {"fileObject": {"@id": record_files[0].id}}


def _record_sets(files: list[DistributionFile], records_source: dict) -> list[dict[str, Any]]:
    sets = [{"@type": "cr:RecordSet", "@id": "records", "name": "records",
             "description": "One record per post whose author consented.",
             "key": {"@id": "records/record_id"},
             "field": [_field("records", f, records_source) for f in RECORD_FIELDS]}]
    removals = [f for f in files if f.holds == "removals"]
    if removals:
        source = {"fileObject": {"@id": removals[0].id}}
        fields = [_field("removals", f, source) for f in REMOVAL_FIELDS]
        for entry in fields:
            if entry["name"] == "record_id":
                entry["references"] = {"field": {"@id": "records/record_id"}}
        sets.append({"@type": "cr:RecordSet", "@id": "removals", "name": "removals",
                     "description": "Records of the previous release removed since; delete them from every copy.",
                     "field": fields})
    return sets


def _field(record_set: str, field: Field, source: dict, parent: str | None = None) -> dict[str, Any]:
    field_id = f"{record_set}/{parent + '/' if parent else ''}{field.name}"
    entry: dict[str, Any] = {"@type": "cr:Field", "@id": field_id, "name": field.name,
                             "description": field.description, "dataType": field.data_type}
    if parent is None:
        entry["source"] = {**source, "extract": {"column": field.name}}
    else:
        entry["source"] = {**source, "extract": {"column": parent}, "transform": {"jsonPath": field.name}}
    if field.is_array:
        entry["isArray"] = True
        entry["arrayShape"] = "-1"
    if field.sub_fields:
        entry["subField"] = [_field(record_set, sub, source, parent=field.name) for sub in field.sub_fields]
    return entry


def parse_and_check(document: dict[str, Any], *, base: str) -> Graph:
    """Parse as JSON-LD with rdflib and check Croissant's required dataset properties are there."""
    graph = Graph()
    try:
        graph.parse(data=json.dumps(document), format="json-ld", base=base)
    except Exception as exc:  # noqa: BLE001 - any parser failure means the same thing here
        raise CroissantError(f"croissant.json does not parse as JSON-LD: {exc}") from exc
    datasets = list(graph.subjects(RDF.type, SC.Dataset))
    if len(datasets) != 1:
        raise CroissantError(f"expected one sc:Dataset, found {len(datasets)}")
    missing = [str(p) for p in REQUIRED if graph.value(datasets[0], p) is None]
    if missing:
        raise CroissantError(f"croissant.json lacks required properties: {', '.join(missing)}")
    return graph


def render(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
