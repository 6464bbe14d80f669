"""What a corpus release is, in words and numbers: the facts gathered from the database, the record
fields, and the dataset card (README.md with Hugging Face front matter plus a datasheet after Gebru
et al.). croissant.py says the same things in JSON-LD."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aiosqlite

from fedserver import __version__
from fedserver.context import Context
from fedserver.corpus.manifest import ReleasePlan
from fedserver.corpus.records import RECORD_SCHEMA_VERSION
from fedserver.corpus.terms import CONSENT_TERMS, LICENSE_URLS, RESEARCHER_TERMS, TRAIN_AI
from fedserver.store import corpus as corpus_store


@dataclass(frozen=True)
class Field:
    """One key of a corpus record. data_type is a schema.org type (as Croissant names it)."""
    name: str
    data_type: str
    description: str
    is_array: bool = False
    sub_fields: tuple["Field", ...] = ()


# Every key build_record writes, in sorted order (tests check the two agree).
RECORD_FIELDS: tuple[Field, ...] = (
    Field("author_choices", "sc:StructuredValue", "The author's training choices at export time, per purpose.",
          sub_fields=(Field(TRAIN_AI, "sc:Text", "The author's AI-training choice (always allow in a release)."),)),
    Field("author_id", "sc:Text", "Pseudonymous author id: a keyed hash of the author's URL, never the handle."),
    Field("boost_count", "sc:Integer", "How many boosts (shares) of the post this server knows."),
    Field("consent_event", "sc:StructuredValue", "The consent-log event that authorised this record.",
          sub_fields=(Field("at", "sc:DateTime", "When the consent was given (UTC)."),
                      Field("hash", "sc:Text", "SHA-256 hash of the event in the hash-chained consent log."),
                      Field("id", "sc:Integer", "Id of the event in the consent log."),
                      Field("scope", "sc:Text", "future: posts from the time of consent on; all: earlier ones too."))),
    Field("content_warning", "sc:Text", "The post's content warning (summary), if any."),
    Field("created_at", "sc:DateTime", "When the post was published (UTC, ISO 8601)."),
    Field("edited_at", "sc:DateTime", "When the post was last edited (UTC), if it was."),
    Field("hashtags", "sc:Text", "Hashtags of the post, lower-cased.", is_array=True),
    Field("html", "sc:Text", "The post as sanitized HTML (latest version)."),
    Field("in_reply_to", "sc:Text", "Pseudonymous record id of the post this one replies to, if any."),
    Field("language", "sc:Text", "Language the author declared (ISO 639-1), if any."),
    Field("license", "sc:Text", "SPDX id of the licence the author granted: CC0-1.0, CC-BY-4.0 or CC-BY-SA-4.0."),
    Field("license_url", "sc:URL", "URL of that licence."),
    Field("local", "sc:Boolean", "Whether the author has an account on this server."),
    Field("mentions", "sc:Text", "Pseudonymous author ids of the people the post mentions.", is_array=True),
    Field("post_url", "sc:URL", "ActivityPub id of the post."),
    Field("record_id", "sc:Text", "Stable pseudonymous record id (removal lists and the changes feed use it)."),
    Field("schema_version", "sc:Text", "Version of this record layout."),
    Field("source_instance", "sc:Text", "Host name of the server the author's account lives on."),
    Field("text", "sc:Text", "The post as plain text (latest version)."),
    Field("visibility", "sc:Text", "public, or unlisted when the author allowed unlisted posts."),
)

REMOVAL_FIELDS: tuple[Field, ...] = (
    Field("reason", "sc:Text", "Why the record left: consent_withdrawn, post_deleted, post_excluded, account_deleted,"
                               " account_suspended, visibility_narrowed or outside_consent_scope."),
    Field("record_id", "sc:Text", "Id of a record of the previous release that must be deleted."),
    Field("removed_at", "sc:DateTime", "When the record left the corpus (UTC)."),
)


@dataclass(frozen=True)
class DatasetFacts:
    """Everything the card, croissant.json and the manifest state about one corpus state."""
    name: str
    pretty_name: str
    instance_name: str
    base_url: str
    domain: str
    plan: ReleasePlan
    records: int
    authors: int
    languages: dict[str, int]
    licenses: dict[str, int]
    first_published: str | None
    last_published: str | None
    consent_head: str

    @property
    def version(self) -> str:
        return self.plan.version

    @property
    def created_at(self) -> str:
        return self.plan.created_at

    @property
    def license_ids(self) -> list[str]:
        return sorted(k for k in self.licenses if k in LICENSE_URLS)

    @property
    def language_codes(self) -> list[str]:
        return sorted(k for k in self.languages if k and k != "und")


async def gather_facts(ctx: Context, conn: aiosqlite.Connection, plan: ReleasePlan, *,
                       stats: dict[str, Any] | None = None) -> DatasetFacts:
    """Facts about the corpus as conn sees it (a snapshot during an export). stats: what
    store.corpus.stats would answer, when the caller has counted it already (an export does)."""
    if stats is None:
        stats = await corpus_store.stats(conn)
    head = await corpus_store.consent_head_at(conn, plan.created_at) if plan.seq else None
    domain = ctx.urls.domain
    return DatasetFacts(
        name=re.sub(r"[^a-z0-9.]+", "-", domain.lower()) + "-opt-in-corpus",
        pretty_name=f"{ctx.settings.instance.name} ({domain}) opt-in training corpus",
        instance_name=ctx.settings.instance.name, base_url=ctx.settings.base_url, domain=domain, plan=plan,
        records=stats["records"], authors=stats["authors"], languages=stats["languages"],
        licenses=stats["licenses"], first_published=stats["first_published"],
        last_published=stats["last_published"], consent_head=head or "0" * 64)


# --- The datasheet's prose, shared with croissant.py's RAI fields ---------------------------------

def description(facts: DatasetFacts) -> str:
    return (f"Public posts from the fediverse server {facts.domain} whose authors explicitly opted in to their "
            "use for training AI models, each under the licence its author chose. Authors are pseudonymous; "
            "every record names the consent-log event that authorised it, and each release lists the records "
            "that must be deleted since the previous one.")


EXCLUDED = (
    "Only posts addressed to the public are eligible; unlisted posts only when their author allowed that. "
    "Followers-only posts and direct messages are never included, whatever any setting says. Also excluded: "
    "posts of anyone who has not explicitly allowed AI training (no choice means no), posts the author "
    "excluded one by one, posts written before the consent when the author chose 'from now on', deleted "
    "posts, posts of deleted or suspended accounts, and posts from other servers unless their author signalled "
    "consent with this server's JSON-LD term (most restrictive signal wins). Boosts are not separate records.")

PSEUDONYMISATION = (
    "Authors appear only as keyed-hash ids (HMAC-SHA-256 with a key kept on the server), never as names or "
    "handles; mentions and reply targets are pseudonymised the same way. The post text itself may still "
    "contain names, handles, e-mail addresses or other personal data the author wrote; with the scrubbing "
    "option, e-mail addresses, phone numbers and the @-handles of people not in the corpus are replaced by "
    "[EMAIL], [PHONE] and [HANDLE]. Re-identification remains possible from the text and the post URL.")

REMOVAL_POLICY = (
    "Consent can be withdrawn at any time, and posts can be deleted or excluded. Such records leave the corpus "
    "at the next update: the changes feed of the researcher API lists them at once with a reason code, and "
    "every release ships removals.jsonl with the records of the previous release that were removed since. "
    "A release that removes records gets a new MAJOR version. Researchers must apply removals within 7 days "
    "and must not use removed records again; older releases must not be used once a newer one lists "
    "removals from them.")

LIMITATIONS = (
    "Small and self-selected: only people on one server who chose to opt in. Posts are short, informal and "
    "conversational, with replies often missing their context (non-consenting authors' posts are absent). "
    "Language is what the author declared, not detected. Scrubbing is pattern-based and misses personal "
    "data written in other forms.")

BIASES = (
    "People who opt in to AI training differ from those who do not (attitudes to AI, technical background, "
    "community norms of the server), and the fediverse's population is not representative of any general "
    "population. Topics, languages and viewpoints follow the server's community.")

USE_CASES = (
    "Training and evaluating AI models, including generative language models, by researchers registered with "
    "the server's administrator who accepted its data-use agreement. Not for re-identifying authors, "
    "profiling people, or redistribution.")

MAINTENANCE = (
    "Maintained by the administrator of the server. Releases follow semantic versioning: a release that removes "
    "records is a new MAJOR version, one that only adds or updates records a new MINOR version, and exporting an "
    "unchanged corpus gives the same version with the same records (byte-identical files with the same software "
    "and settings). Every release has a manifest signed with the server's instance key, listing the SHA-256 of "
    "every file, record counts, the corpus cursor, the head of the consent log, and the SHA-256 of the records "
    "themselves as JSON Lines (`records_sha256`), which does not depend on compression or format.")


def size_category(records: int) -> str:
    bounds = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
    for bound, label in bounds:
        if records < bound:
            return label
    return "n>1B" if records < 10_000_000_000 else "n>1T"


# --- README.md ---------------------------------------------------------------------------------

def _yaml(value: Any) -> str:
    # A JSON string is a valid YAML double-quoted scalar: no YAML library needed, nothing ambiguous.
    return json.dumps(value, ensure_ascii=False)


def front_matter(facts: DatasetFacts, data_glob: str) -> list[str]:
    ids = facts.license_ids
    lines = ["---", f"pretty_name: {_yaml(facts.pretty_name)}"]
    if len(ids) == 1:
        lines.append(f"license: {ids[0].lower()}")  # Hub licence ids are the SPDX ids in lower case
    else:
        lines += ["license: other", "license_name: per-record-cc-licences", "license_link: README.md#licences",
                  f"license_details: {_yaml(_licence_details(facts))}"]
    lines.append("language:" + ("" if facts.language_codes else " []"))
    lines += [f"- {_yaml(code)}" for code in facts.language_codes]
    lines += ["multilinguality:", f"- {'multilingual' if len(facts.language_codes) > 1 else 'monolingual'}",
              "size_categories:", f"- {size_category(facts.records)}",
              "task_categories:", "- text-generation",
              "language_creators:", "- found", "annotations_creators:", "- no-annotation",
              "source_datasets:", "- original",
              "tags:", "- fediverse", "- activitypub", "- opt-in", "- consent",
              f"version: {_yaml(facts.version)}",
              "configs:", "- config_name: default", "  data_files:", "  - split: train",
              f"    path: {_yaml(data_glob)}",
              *gated_access(facts),
              "---"]
    return lines


def gated_access(facts: DatasetFacts) -> list[str]:
    """Hugging Face gated-access fields (hub docs, datasets-gated): if a release is ever put on the
    Hub it must stay gated, since the data-use agreement forbids redistribution. They name that
    agreement (version, SHA-256, where to read it) and ask for what it asks of a researcher."""
    terms_url = f"{facts.base_url}/api/corpus/v1/terms"
    agreement = f"the data-use agreement {RESEARCHER_TERMS.version} of {facts.domain}"
    return [
        "extra_gated_heading: " + _yaml(f"Accept {agreement} to access this consent-only corpus"),
        "extra_gated_description: " + _yaml(
            f"Every record's author explicitly opted in to AI training. Access is bound by {agreement} "
            f"(SHA-256 {RESEARCHER_TERMS.sha256}, text in this card and at {terms_url}): use for AI training "
            "research only, apply every removal, no redistribution, no re-identification."),
        "extra_gated_prompt: " + _yaml(f"Access requires accepting {agreement} ({terms_url})."),
        "extra_gated_button_content: " + _yaml(f"Accept {RESEARCHER_TERMS.version} and request access"),
        "extra_gated_fields:",
        "  Name: text",
        "  Affiliation: text",
        "  Purpose of use: text",
        f"  {_yaml(f'I accept {agreement} (SHA-256 {RESEARCHER_TERMS.sha256[:16]}...)')}: checkbox",
        f"  {_yaml('I will delete every removed record within the period the agreement sets')}: checkbox",
        f"  {_yaml('I will not redistribute the corpus or try to identify its authors')}: checkbox",
    ]


def _licence_details(facts: DatasetFacts) -> str:
    if not facts.licenses:
        return "The release holds no records."
    parts = [f"{k} ({n} records)" for k, n in sorted(facts.licenses.items())]
    return "Each record carries its author's licence: " + ", ".join(parts) + "."


def render_card(facts: DatasetFacts, *, data_glob: str, shards: list[dict[str, Any]], removals: int,
                scrubbed: bool, format_name: str) -> str:
    plan = facts.plan
    counts = "\n".join(f"| `{s['path']}` | {s['records']} |" for s in shards)
    languages = ", ".join(f"{k} ({n})" for k, n in sorted(facts.languages.items())) or "none"
    licences = "\n".join(f"- [{k}]({LICENSE_URLS.get(k, '')}): {n} records" for k, n in sorted(facts.licenses.items()))
    fields = "\n".join(_field_rows(RECORD_FIELDS))
    lines = front_matter(facts, data_glob) + [
        "", f"# {facts.pretty_name}", "", description(facts), "",
        "## This release", "",
        f"- Version: **{plan.version}** (previous: {plan.previous_version or 'none, this is the first release'})",
        f"- State of the corpus at: {plan.created_at} (corpus cursor {plan.seq})",
        f"- Records: {facts.records} from {facts.authors} authors, published {facts.first_published or '-'}"
        f" to {facts.last_published or '-'}",
        f"- Languages: {languages}",
        f"- Format: {format_name}" + (", scrubbed of e-mail addresses, phone numbers and handles of people not"
                                      " in the corpus" if scrubbed else ""),
        f"- Removals since the previous release: {removals} (in `removals.jsonl`)",
        f"- Consent-log head: `{facts.consent_head}`", "",
        "| shard | records |", "| --- | --- |", counts, "",
        "## Motivation", "",
        "Most text corpora are gathered without asking the people who wrote it. This one holds only posts whose "
        "authors said yes, explicitly and revocably, so that AI models can be trained on what people agreed to and "
        "on nothing else. It is published by the server's administrator for registered researchers.", "",
        "## Composition", "",
        "One record per post: its text and sanitized HTML, language, times, a pseudonymous author id, the author's "
        "choice and licence, the consent event that authorised it, and reply, mention and hashtag structure with "
        "pseudonymous ids.", "", "| field | type | description |", "| --- | --- | --- |", fields, "",
        "### What is excluded", "", EXCLUDED, "",
        "## Collection process", "",
        "Nothing is collected unless its author opts in. Training use is off by default; an author turns it on "
        "with an explicit act in their settings (or the administrator records their choice on their behalf, which "
        "the consent log marks as such), choosing a licence and whether earlier public posts are included. Every "
        "change is appended to a hash-chained consent log that is never rewritten; each record names the event "
        "that authorised it. The author was shown exactly this text:", "",
        f"Consent text version `{CONSENT_TERMS.version}`, SHA-256 `{CONSENT_TERMS.sha256}`:", "",
        "````text", CONSENT_TERMS.text.rstrip("\n"), "````", "",
        "Authors on other servers are included only when their own server signals their consent with this "
        "server's JSON-LD term.", "",
        "## Preprocessing and pseudonymisation", "", PSEUDONYMISATION, "",
        "## Uses", "", USE_CASES, "",
        "### Limitations", "", LIMITATIONS, "", "### Biases", "", BIASES, "",
        "## Licences", "",
        "Every record carries the licence its author granted; honour it per record (attribution by record id for "
        "CC-BY, share-alike for CC-BY-SA).", "", licences or "- (no records)", "",
        "## Removal policy", "", REMOVAL_POLICY, "",
        "Researchers are bound by this data-use agreement "
        f"(version `{RESEARCHER_TERMS.version}`, SHA-256 `{RESEARCHER_TERMS.sha256}`):", "",
        "````text", RESEARCHER_TERMS.text.rstrip("\n"), "````", "",
        "## Maintenance and versioning", "", MAINTENANCE, "",
        "## Verifying this release", "",
        "`manifest.json` lists every file with its SHA-256 and record counts. `manifest.json.sig` is a base64 "
        "RSA-PKCS#1-v1.5/SHA-256 signature over the exact bytes of `manifest.json`, made with the key of the "
        f"server's instance actor ({facts.base_url}/actor); `manifest.sig.json` names the key id and its public key. "
        "Compare that key with the one the instance actor document publishes, then run "
        "`fedserver corpus verify DIR` (or check the signature and checksums with any tool).", "",
        f"Generated by fedserver {__version__}; record layout version {RECORD_SCHEMA_VERSION}.", ""]
    return "\n".join(lines)


def _field_rows(fields: tuple[Field, ...], prefix: str = "") -> list[str]:
    rows = []
    for field in fields:
        kind = field.data_type.removeprefix("sc:") + ("[]" if field.is_array else "")
        rows.append(f"| `{prefix}{field.name}` | {kind} | {field.description} |")
        rows += _field_rows(field.sub_fields, f"{prefix}{field.name}.")
    return rows
