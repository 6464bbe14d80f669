"""Keyword filter matching and rel=me link reading, the pure parts (services.keyword_filters,
services.profile_fields): what matches as Mastodon would match it."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fedserver.services.keyword_filters import Matcher, keyword_pattern
from fedserver.services.profile_fields import links_back
from fedserver.store.keyword_filters import Keyword, KeywordFilter


def matches(keyword: str, whole: bool, text: str) -> bool:
    pattern = keyword_pattern([Keyword(keyword, whole)])
    assert pattern is not None
    return pattern.search(text) is not None


def test_whole_word_keywords_match_only_whole_words_case_insensitively():
    assert matches("cat", True, "A CAT sat") and matches("cat", True, "cat.")
    assert not matches("cat", True, "cats and concatenation")
    assert matches("cat", False, "concatenation")
    # Boundaries only where the keyword has word characters at its edge (Mastodon's rule).
    assert matches("#tag", True, "see #tag here") and matches("c++", True, "I like c++!")
    assert not matches("#tag", True, "#tagged")


def test_regex_characters_in_keywords_are_literal():
    assert not matches("a.c", False, "abc") and matches("a.c", False, "x a.c y")
    assert not matches("(", False, "nothing") and matches("(", False, "a (b")


@given(st.text(min_size=1, max_size=30), st.text(max_size=200))
def test_any_keyword_compiles_and_matches_itself(keyword: str, text: str):
    pattern = keyword_pattern([Keyword(keyword, False)])
    assert pattern is not None and pattern.search(text + keyword) is not None


def test_hide_wins_and_warn_titles_are_listed():
    def make(title: str, action: str, word: str) -> KeywordFilter:
        return KeywordFilter(id=1, owner_id=1, title=title, contexts=("home",), action=action, expires_at=None,
                             created_at="", keywords=[Keyword(word, True)])
    matcher = Matcher([make("A", "warn", "apple"), make("B", "warn", "pear"), make("C", "hide", "plum")])
    assert [f.title for f in matcher.check("apple and pear").warned_by] == ["A", "B"]
    assert matcher.check("apple and plum").hidden
    assert not matcher.check("nothing").hidden and matcher.check("nothing").warned_by == ()


def test_a_rel_me_link_back_is_found_in_a_or_link_elements_only():
    profile = {"https://social.example/@alice", "https://social.example/users/alice"}
    assert links_back('<a rel="me" href="https://social.example/@alice">me</a>', profile)
    assert links_back('<link rel="authn ME" href="https://social.example/users/alice/">', profile)
    assert not links_back('<a href="https://social.example/@alice">no rel</a>', profile)
    assert not links_back('<a rel="me" href="https://social.example/@alicia">other</a>', profile)
    assert not links_back('<img rel="me" src="https://social.example/@alice">', profile)
    assert not links_back("<a rel=me href=" + "<" * 10_000, profile)
