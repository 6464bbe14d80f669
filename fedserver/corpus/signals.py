"""Consent signals on the wire: our JSON-LD terms on actors and Notes, the FEP-5e53 `noai` hint,
HTTP headers for crawlers, and reading the same signals from remote documents by expanded IRI.

Mapping to IETF aipref (draft-ietf-aipref-vocab): our per-purpose choice allow/deny/unset maps to
the aipref value y/n/(absent = unknown) of the label with the same name (`train-ai`), and back. The
wire value of `contentUsage` is an aipref Structured-Fields dictionary string, e.g. "train-ai=y".
See docs/fep-consent.md."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import http_sf

from fedserver.corpus.eligibility import AuthorFacts, ConsentFacts, PostFacts, evaluate
from fedserver.corpus.terms import LICENSE_URLS, TRAIN_AI

NAMESPACE = "https://w3id.org/fedserver/ns#"
CONTENT_USAGE_IRI = NAMESPACE + "contentUsage"
CONTENT_LICENSE_IRI = NAMESPACE + "contentLicense"
# FEP-5e53's own context.jsonld (fep/5e53 in the FEP repository) maps xRobotsTag to this IRI; the
# FEP's examples name a placeholder context URL instead. We emit the former and, since a noai hint
# can only restrict, read all three spellings: either IRI, or the bare term next to the placeholder.
X_ROBOTS_TAG_IRI = "https://www.robotstxt.org/meta.html"
FEP_5E53_CONTEXT = "https://fep.example/ns/privacyHeaders"
NOAI_IRIS = (X_ROBOTS_TAG_IRI, FEP_5E53_CONTEXT + "#xRobotsTag")
# Context URLs whose terms we know without fetching them.
KNOWN_CONTEXTS: dict[str, dict[str, Any]] = {FEP_5E53_CONTEXT: {"xRobotsTag": X_ROBOTS_TAG_IRI}}
CONTEXT_PATH = "/ns/consent"

# Inlined in every document we serve, so peers never need to fetch anything to read it.
CONTEXT_TERMS: dict[str, Any] = {
    "fedserver": NAMESPACE,
    "contentUsage": "fedserver:contentUsage",
    "contentLicense": {"@id": "fedserver:contentLicense", "@type": "@id"},
    "xRobotsTag": X_ROBOTS_TAG_IRI,
}

NOAI = "noai, noimageai"
TO_AIPREF = {"allow": "y", "deny": "n"}
FROM_AIPREF = {"y": "allow", "n": "deny"}


def context_document() -> dict[str, Any]:
    """The context document served at CONTEXT_PATH (stable URL; identical on every instance)."""
    return {"@context": {**CONTEXT_TERMS}}


def aipref_value(choice: str) -> str | None:
    """`train-ai=y` / `train-ai=n`, or None for unset (aipref: unknown, i.e. no statement)."""
    token = TO_AIPREF.get(choice)
    return f"{TRAIN_AI}={token}" if token else None


def document_fields(choice: str, license: str | None, *, post_excluded: bool = False) -> dict[str, Any]:
    """Fields to add to an actor (post_excluded False) or Note for the author's effective choice."""
    effective = "deny" if post_excluded and choice == "allow" else choice
    fields: dict[str, Any] = {}
    value = aipref_value(effective)
    if value:
        fields["contentUsage"] = value
    if effective == "allow" and license in LICENSE_URLS:
        fields["contentLicense"] = LICENSE_URLS[license]
    if effective != "allow":
        fields["xRobotsTag"] = NOAI
    return fields


def http_headers(choice: str, *, post_excluded: bool = False) -> dict[str, str]:
    """Crawler headers for a page or object of an author with this choice."""
    effective = "deny" if post_excluded and choice == "allow" else choice
    if effective == "allow":
        return {"Content-Usage": f"{TRAIN_AI}=y"}
    return {"Content-Usage": f"{TRAIN_AI}=n", "X-Robots-Tag": NOAI}


def post_choice(consent: ConsentFacts | None, post: PostFacts, author: AuthorFacts | None = None) -> str:
    """The author's choice as it applies to one of their posts. An allow covers exactly the posts
    the corpus rule admits (public, within the consent's scope, not excluded); for any other post
    of a consenting author the answer is deny. Without an allow the author's choice stands."""
    if consent is None or consent.choice != "allow":
        return consent.choice if consent is not None else "unset"
    return "allow" if evaluate(post, author or AuthorFacts(False, False), consent) is None else "deny"


# --- reading remote documents ---------------------------------------------------------

@dataclass(frozen=True)
class RemoteSignal:
    choice: str  # allow | deny | unset
    license: str | None


def _inline_terms(context: Any) -> dict[str, Any]:
    """Term definitions from inline context objects. Remote context URLs are never fetched; the
    ones peers use (ActivityStreams, security) do not define these terms."""
    terms: dict[str, Any] = {}
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, str) and entry in KNOWN_CONTEXTS:
            terms.update(KNOWN_CONTEXTS[entry])
        elif isinstance(entry, dict):
            terms.update({k: v for k, v in entry.items() if not k.startswith("@")})
    return terms


def _expand(key: str, terms: dict[str, Any], depth: int = 0) -> str | None:
    if depth > 4:
        return None
    definition = terms.get(key)
    if isinstance(definition, dict):
        definition = definition.get("@id")
    if isinstance(definition, str):
        return _expand_iri(definition, terms, depth + 1)
    return _expand_iri(key, terms, depth + 1) if ":" in key else None


def _expand_iri(value: str, terms: dict[str, Any], depth: int) -> str | None:
    if value.startswith(("http://", "https://")):
        return value
    if ":" in value:
        prefix, suffix = value.split(":", 1)
        base = terms.get(prefix)
        if isinstance(base, dict):
            base = base.get("@id")
        if isinstance(base, str) and depth < 5:
            expanded = _expand_iri(base, terms, depth + 1)
            return expanded + suffix if expanded else None
    return None


def _values_by_iri(document: dict[str, Any], terms: dict[str, Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for key, value in document.items():
        if key.startswith("@"):
            continue
        iri = _expand(key, terms)
        if iri:
            found.setdefault(iri, []).extend(value if isinstance(value, list) else [value])
    return found


def _aipref_choice(value: Any) -> str | None:
    """Parse an aipref statement (an RFC 9651 Dictionary, draft-ietf-aipref-vocab §6) for train-ai:
    allow, deny, unset (present but unknown), or None when it says nothing about train-ai."""
    if isinstance(value, dict):
        value = value.get("@value")
    if not isinstance(value, str):
        return None
    try:
        # The parser keeps the last occurrence of a repeated key, as aipref requires.
        members = http_sf.parse(value.strip().encode("ascii"), tltype="dictionary")
    except (UnicodeEncodeError, http_sf.StructuredFieldError, ValueError):
        return "unset"  # aipref: a statement that fails to parse leaves every preference unknown
    if not isinstance(members, dict) or TRAIN_AI not in members:
        return None
    member = members[TRAIN_AI]  # (value, parameters), or (inner list, parameters)
    token = member[0] if isinstance(member, tuple) else None
    # Only the Tokens y and n mean anything; a boolean, a string "y" or any other token is unknown.
    return FROM_AIPREF.get(str(token), "unset") if isinstance(token, http_sf.Token) else "unset"


def _has_noai(values: list[Any]) -> bool:
    """Any noai/noimageai directive, also one scoped to a named bot ("otherbot: noai") or inside a
    JSON-LD list: a restriction for anyone is honoured as a restriction here."""
    for value in values:
        if isinstance(value, dict):
            if isinstance(value.get("@list"), list):
                if _has_noai(value["@list"]):
                    return True
                continue
            value = value.get("@value")
        if isinstance(value, str) and any(t.split(":")[-1].strip().lower() in ("noai", "noimageai")
                                          for t in value.split(",")):
            return True
    return False


def _iri_value(value: Any) -> str | None:
    """A licence IRI given as a string or as a node reference ({"@id": ...}, or AS2's "id" alias)."""
    if isinstance(value, dict):
        value = value.get("@id", value.get("id"))
    return value if isinstance(value, str) else None


def read_signal(document: dict[str, Any], *, context: Any = None) -> RemoteSignal:
    """The training choice a remote actor or object document expresses. Terms are matched by their
    expanded IRI, not by their prefix; when several signals are present the most restrictive wins
    (aipref): any deny, or a FEP-5e53 noai hint, beats an allow. No signal means unset."""
    terms = _inline_terms(document.get("@context") if context is None else context)
    values = _values_by_iri(document, terms)
    choices = [c for c in (_aipref_choice(v) for v in values.get(CONTENT_USAGE_IRI, [])) if c]
    if _has_noai([v for iri in NOAI_IRIS for v in values.get(iri, [])]):
        choices.append("deny")
    if "deny" in choices:
        return RemoteSignal("deny", None)
    if "allow" in choices:
        license_urls = {u for u in (_iri_value(v) for v in values.get(CONTENT_LICENSE_IRI, [])) if u}
        by_url = {url: spdx for spdx, url in LICENSE_URLS.items()}
        licenses = [by_url[u] for u in license_urls if u in by_url]
        # An allow without a licence we can name is not usable consent for the corpus.
        if len(licenses) == 1:
            return RemoteSignal("allow", licenses[0])
        return RemoteSignal("unset", None)
    return RemoteSignal("unset", None)


def actor_context_extension() -> dict[str, Any]:
    return dict(CONTEXT_TERMS)


