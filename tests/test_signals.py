"""Reading and writing the training-consent signal (fedserver.corpus.signals, docs/fep-consent.md):
terms matched by expanded IRI, most restrictive wins, aipref strings parsed as RFC 9651
dictionaries, and our documents and headers reading back as the choice they were made from."""
from __future__ import annotations

import json

import http_sf
import pytest
import rdflib
from hypothesis import given
from hypothesis import strategies as st

from fedserver.corpus import signals
from fedserver.corpus.eligibility import ConsentFacts, PostFacts
from fedserver.corpus.signals import (CONTENT_LICENSE_IRI, CONTENT_USAGE_IRI, NAMESPACE, X_ROBOTS_TAG_IRI,
                                      RemoteSignal, read_signal)
from fedserver.corpus.terms import LICENSE_URLS, LICENSES

AS = "https://www.w3.org/ns/activitystreams"
CC_BY = LICENSE_URLS["CC-BY-4.0"]
OURS = signals.actor_context_extension()


def actor(**fields) -> dict:
    return {"@context": [AS, OURS], "id": "https://a.example/users/alice", "type": "Person", **fields}


# --- matching terms by expanded IRI ------------------------------------------------------

def test_our_term_by_compact_name_with_our_inline_context_is_read():
    assert read_signal(actor(contentUsage="train-ai=y", contentLicense=CC_BY)) == RemoteSignal("allow", "CC-BY-4.0")


def test_our_term_by_full_iri_key_is_read_without_any_context():
    doc = {"@context": AS, CONTENT_USAGE_IRI: "train-ai=y", CONTENT_LICENSE_IRI: CC_BY}
    assert read_signal(doc) == RemoteSignal("allow", "CC-BY-4.0")


def test_our_term_under_another_prefix_bound_to_our_namespace_is_read():
    doc = {"@context": [AS, {"fs": NAMESPACE}], "fs:contentUsage": "train-ai=y", "fs:contentLicense": CC_BY}
    assert read_signal(doc) == RemoteSignal("allow", "CC-BY-4.0")


def test_our_term_defined_through_a_chain_of_prefixes_is_read():
    doc = {"@context": [AS, {"w3id": "https://w3id.org/", "fs": "w3id:fedserver/ns#", "usage": "fs:contentUsage",
                             "lic": {"@id": "fs:contentLicense", "@type": "@id"}}],
           "usage": "train-ai=y", "lic": CC_BY}
    assert read_signal(doc) == RemoteSignal("allow", "CC-BY-4.0")


def test_a_look_alike_term_with_another_iri_is_ignored():
    lookalike = {"contentUsage": "https://evil.example/ns#contentUsage",
                 "contentLicense": "https://evil.example/ns#contentLicense"}
    doc = {"@context": [AS, lookalike], "contentUsage": "train-ai=y", "contentLicense": CC_BY}
    assert read_signal(doc) == RemoteSignal("unset", None)


def test_our_prefix_name_bound_to_another_namespace_is_ignored():
    doc = {"@context": [AS, {"fedserver": "https://evil.example/ns#", "contentUsage": "fedserver:contentUsage"}],
           "contentUsage": "train-ai=y", "fedserver:contentLicense": CC_BY}
    assert read_signal(doc) == RemoteSignal("unset", None)


def test_a_later_context_entry_redefining_our_term_wins_as_in_json_ld():
    doc = {"@context": [AS, OURS, {"contentUsage": "https://evil.example/ns#contentUsage"}],
           "contentUsage": "train-ai=y", "contentLicense": CC_BY}
    assert read_signal(doc) == RemoteSignal("unset", None)


def test_a_redefined_noai_term_no_longer_counts_but_the_real_one_does():
    redefined = {"@context": [AS, OURS, {"xRobotsTag": "https://evil.example/ns#xRobotsTag"}],
                 "contentUsage": "train-ai=y", "contentLicense": CC_BY, "xRobotsTag": "noai"}
    assert read_signal(redefined).choice == "allow"
    real = {**redefined, X_ROBOTS_TAG_IRI: "noai"}
    assert read_signal(real).choice == "deny"


def test_terms_from_a_context_given_only_by_url_are_not_fetched_and_not_read():
    doc = {"@context": [AS, "https://a.example/ns/consent"], "contentUsage": "train-ai=y", "contentLicense": CC_BY}
    assert read_signal(doc) == RemoteSignal("unset", None)


def test_an_unprefixed_key_without_a_definition_is_ignored():
    doc = {"@context": AS, "contentUsage": "train-ai=y", "contentLicense": CC_BY}
    assert read_signal(doc) == RemoteSignal("unset", None)


def test_the_context_of_the_enclosing_activity_is_used_for_an_embedded_object():
    note = {"id": "https://a.example/notes/1", "type": "Note", "xRobotsTag": "noai"}
    assert read_signal(note).choice == "unset"
    assert read_signal(note, context=[AS, OURS]).choice == "deny"


# --- most restrictive wins ---------------------------------------------------------------

def test_fep_5e53_noai_beats_an_allow():
    assert read_signal(actor(contentUsage="train-ai=y", contentLicense=CC_BY, xRobotsTag="noai")) == \
        RemoteSignal("deny", None)


@pytest.mark.parametrize("tag", ["noai", "noimageai", "NoAI", "noindex, noai", ["nofollow", "noimageai"],
                                 {"@value": "noai"}])
def test_every_form_of_the_noai_hint_is_a_deny(tag):
    assert read_signal(actor(xRobotsTag=tag)).choice == "deny"


@pytest.mark.parametrize("document", [
    # FEP-5e53's context.jsonld, inlined as its authors define it (a list container).
    {"@context": [AS, {"xRobotsTag": {"@id": "https://www.robotstxt.org/meta.html", "@type": "@id",
                                      "@container": "@list"}}], "xRobotsTag": {"@list": ["noai"]}},
    # The FEP's own example: the bare term next to its placeholder context URL (never fetched).
    {"@context": [AS, "https://fep.example/ns/privacyHeaders"], "xRobotsTag": "noai"},
    # The IRI fedserver used before it adopted the one from FEP-5e53's context.
    {"@context": AS, "https://fep.example/ns/privacyHeaders#xRobotsTag": "noai"},
    # A directive scoped to one bot is still a restriction.
    {"@context": [AS, OURS], "xRobotsTag": "otherbot: noai"},
])
def test_noai_is_recognised_in_every_spelling_peers_may_use(document):
    document = {**document, CONTENT_USAGE_IRI: "train-ai=y", CONTENT_LICENSE_IRI: CC_BY}
    assert read_signal(document).choice == "deny"


def test_a_robots_tag_without_noai_says_nothing():
    assert read_signal(actor(contentUsage="train-ai=y", contentLicense=CC_BY, xRobotsTag="noindex")).choice == "allow"


def test_deny_beats_allow_when_both_are_present():
    assert read_signal(actor(contentUsage=["train-ai=y", "train-ai=n"], contentLicense=CC_BY)).choice == "deny"
    both_keys = actor(contentUsage="train-ai=y", contentLicense=CC_BY, **{CONTENT_USAGE_IRI: "train-ai=n"})
    assert read_signal(both_keys).choice == "deny"


def test_an_unknown_statement_next_to_an_allow_keeps_the_allow():
    assert read_signal(actor(contentUsage=["train-ai=y", "garbage!"], contentLicense=CC_BY)).choice == "allow"


def test_mastodon_indexable_is_not_consent_to_training():
    assert read_signal({"@context": [AS, {"toot": "http://joinmastodon.org/ns#", "indexable": "toot:indexable"}],
                        "indexable": True}) == RemoteSignal("unset", None)


def test_indexable_false_does_not_take_back_an_explicit_allow():
    # indexable governs full-text search only (FEP-5feb); Mastodon sends false by default.
    doc = actor(contentUsage="train-ai=y", contentLicense=CC_BY, indexable=False)
    doc["@context"] = [AS, {**OURS, "toot": "http://joinmastodon.org/ns#", "indexable": "toot:indexable"}]
    assert read_signal(doc).choice == "allow"


# --- licence ---------------------------------------------------------------------------------

def test_an_allow_without_a_licence_is_not_usable_consent():
    assert read_signal(actor(contentUsage="train-ai=y")) == RemoteSignal("unset", None)


def test_an_allow_with_an_unknown_licence_is_not_usable_consent():
    assert read_signal(actor(contentUsage="train-ai=y",
                             contentLicense="https://example.com/my-licence")) == RemoteSignal("unset", None)


def test_an_allow_with_two_different_licences_is_ambiguous_and_not_usable():
    doc = actor(contentUsage="train-ai=y", contentLicense=[CC_BY, LICENSE_URLS["CC0-1.0"]])
    assert read_signal(doc) == RemoteSignal("unset", None)


def test_the_licence_given_as_an_id_object_is_read():
    assert read_signal(actor(contentUsage="train-ai=y", contentLicense={"@id": CC_BY})).license == "CC-BY-4.0"


# --- empty arrays and odd shapes (FEP-268d security note) -----------------------------------

def test_empty_arrays_say_nothing_and_take_nothing_away():
    assert read_signal(actor(contentUsage=[], xRobotsTag=[])) == RemoteSignal("unset", None)
    allowed = actor(contentUsage="train-ai=y", contentLicense=CC_BY, xRobotsTag=[])
    assert read_signal(allowed) == RemoteSignal("allow", "CC-BY-4.0")


@pytest.mark.parametrize("value", [None, 1, True, {"train-ai": "y"}, ["train-ai"], {"@value": 5}])
def test_values_that_are_not_strings_say_nothing(value):
    assert read_signal(actor(contentUsage=value, contentLicense=CC_BY)).choice == "unset"


def test_a_value_object_holding_the_string_is_read():
    assert read_signal(actor(contentUsage={"@value": "train-ai=y"}, contentLicense=CC_BY)).choice == "allow"


# --- aipref strings -------------------------------------------------------------------------

@pytest.mark.parametrize("statement, choice", [
    ("train-ai=y", "allow"),
    ("train-ai=n", "deny"),
    ("train-ai=y, search=n", "allow"),
    ("search=n, train-ai=y", "allow"),
    ("train-ai=n, search=y", "deny"),
    ("  train-ai=y  ", "allow"),
    ("train-ai=y;reason=\"opt-in\"", "allow"),       # parameters are ignored
    ("train-ai;allow=n, train-ai=y", "allow"),       # aipref vocab §6.5.2 example
    ("train-ai=y, train-ai=n", "deny"),              # the last occurrence wins
    ("train-ai=n, train-ai=y", "allow"),
    ("train-ai=y, train-ai", "unset"),               # ... even when it is not a token
    ("search=y", "unset"),                           # says nothing about training
    ("train-ai", "unset"),                           # a boolean, not y or n
    ('train-ai="y"', "unset"),                       # a string, not a token
    ("train-ai=yes", "unset"),
    ("train-ai=Y", "unset"),
    ("train-ai=1", "unset"),
    ("Train-AI=y", "unset"),                         # uppercase keys fail to parse: all unknown
    ("train-ai=y,", "unset"),                        # trailing comma: parse failure
    ("train-ai=y, ???", "unset"),                    # garbage anywhere: parse failure
    ("train-ai=n garbage", "unset"),
    ("", "unset"),
    ("tráin-ai=y", "unset"),
])
def test_aipref_statements_are_parsed_as_structured_field_dictionaries(statement, choice):
    assert read_signal(actor(contentUsage=statement, contentLicense=CC_BY)).choice == choice


@given(st.text(max_size=60))
def test_any_string_is_read_without_error_as_one_of_three_answers(text):
    assert read_signal(actor(contentUsage=text, contentLicense=CC_BY)).choice in ("allow", "deny", "unset")


_LABELS = st.sampled_from(["train-ai", "search", "ai-use", "x-y"])
_VALUES = st.one_of(st.sampled_from(["y", "n", "maybe"]).map(http_sf.Token), st.booleans(), st.just("y"),
                    st.integers(0, 3))


@given(st.lists(st.tuples(_LABELS, _VALUES), max_size=6))
def test_the_last_train_ai_member_of_any_valid_dictionary_decides(members):
    # http_sf serialises a dict (one value per key), so build the statement member by member.
    text = ", ".join(http_sf.ser({key: (value, {})}) for key, value in members)
    train = [value for key, value in members if key == "train-ai"]
    expected = "unset"
    if train and isinstance(train[-1], http_sf.Token):
        expected = {"y": "allow", "n": "deny"}.get(str(train[-1]), "unset")
    assert read_signal(actor(contentUsage=text, contentLicense=CC_BY)).choice == expected


# --- what we publish reads back as what we meant ------------------------------------------------

def test_the_mapping_to_aipref_is_two_way():
    assert {v: k for k, v in signals.TO_AIPREF.items()} == signals.FROM_AIPREF
    assert signals.aipref_value("allow") == "train-ai=y"
    assert signals.aipref_value("deny") == "train-ai=n"
    assert signals.aipref_value("unset") is None


_CHOICES = st.sampled_from(["allow", "deny", "unset"])
_LICENSES = st.one_of(st.none(), st.sampled_from(LICENSES))


def _effective(choice: str, excluded: bool) -> str:
    return "deny" if excluded and choice == "allow" else choice


@given(_CHOICES, _LICENSES, st.booleans())
def test_our_document_fields_read_back_as_the_choice_they_encode(choice, license, excluded):
    fields = signals.document_fields(choice, license, post_excluded=excluded)
    got = read_signal({"@context": [AS, OURS], **fields})
    effective = _effective(choice, excluded)
    if effective == "allow" and license is not None:
        assert got == RemoteSignal("allow", license)
        assert "xRobotsTag" not in fields
    else:
        # No usable allow: unset and deny both carry noai, so a receiver reads deny (most
        # restrictive), or unset when an allow lacks a licence.
        assert got.choice in ("deny", "unset") and got.license is None
        assert got.choice == ("unset" if effective == "allow" else "deny")
    if effective == "unset":
        assert "contentUsage" not in fields  # aipref: no statement, not "n"
    else:
        assert fields["contentUsage"] == signals.aipref_value(effective)


@given(_CHOICES, st.booleans())
def test_http_headers_say_yes_exactly_for_a_usable_allow(choice, excluded):
    headers = signals.http_headers(choice, post_excluded=excluded)
    allowed = _effective(choice, excluded) == "allow"
    parsed = http_sf.parse(headers["Content-Usage"].encode(), tltype="dictionary")
    assert str(parsed["train-ai"][0]) == ("y" if allowed else "n")
    assert ("X-Robots-Tag" in headers) is (not allowed)
    if not allowed:
        assert {t.strip() for t in headers["X-Robots-Tag"].split(",")} == {"noai", "noimageai"}


def test_the_context_document_is_valid_json_ld_mapping_our_terms_to_their_iris():
    context = signals.context_document()["@context"]
    doc = {"@context": context, "@id": "https://a.example/users/alice", "contentUsage": "train-ai=y",
           "contentLicense": CC_BY, "xRobotsTag": "noai"}
    graph = rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
    subject = rdflib.URIRef("https://a.example/users/alice")
    assert graph.value(subject, rdflib.URIRef(CONTENT_USAGE_IRI)) == rdflib.Literal("train-ai=y")
    assert graph.value(subject, rdflib.URIRef(CONTENT_LICENSE_IRI)) == rdflib.URIRef(CC_BY)
    assert graph.value(subject, rdflib.URIRef(X_ROBOTS_TAG_IRI)) == rdflib.Literal("noai")


def test_the_served_context_defines_exactly_the_terms_we_inline():
    assert signals.context_document()["@context"] == signals.actor_context_extension()


# --- one post of a consenting author -------------------------------------------------------------

CONSENT = ConsentFacts(choice="allow", include_unlisted=False, effective_from="2026-06-01T00:00:00.000000Z")


def post(**changes) -> PostFacts:
    base = {"visibility": "public", "published_at": "2026-07-01T00:00:00.000000Z", "deleted": False,
            "excluded": False}
    return PostFacts(**{**base, **changes})


@pytest.mark.parametrize("facts, choice", [
    (post(), "allow"),
    (post(excluded=True), "deny"),
    (post(visibility="unlisted"), "deny"),
    (post(visibility="followers"), "deny"),
    (post(published_at="2026-05-31T23:59:59.000000Z"), "deny"),  # before the consent's scope
])
def test_an_allow_covers_exactly_the_posts_the_corpus_takes(facts, choice):
    assert signals.post_choice(CONSENT, facts) == choice


def test_without_an_allow_the_authors_choice_stands_for_every_post():
    assert signals.post_choice(None, post()) == "unset"
    assert signals.post_choice(ConsentFacts("deny", False, None), post()) == "deny"
