"""The one rule deciding whether a post belongs in the research corpus right now, and if not, why.

Only an explicit, current `allow` of the author counts; only posts addressed to the public (unlisted
ones only when the author allowed that) ever qualify; followers-only and direct posts never do,
whatever any flag says."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PostFacts:
    visibility: str
    published_at: str
    deleted: bool
    excluded: bool


@dataclass(frozen=True)
class AuthorFacts:
    deleted: bool
    suspended: bool


@dataclass(frozen=True)
class ConsentFacts:
    choice: str  # allow | deny | unset
    include_unlisted: bool
    effective_from: str | None  # with scope "future": posts published earlier stay out


REMOVAL_REASONS = ("account_deleted", "account_suspended", "post_deleted", "consent_withdrawn", "post_excluded",
                   "visibility_narrowed", "outside_consent_scope")


def evaluate(post: PostFacts, author: AuthorFacts, consent: ConsentFacts | None) -> str | None:
    """None when the post belongs in the corpus, else the reason it does not (a removal reason)."""
    if author.deleted:
        return "account_deleted"
    if author.suspended:
        return "account_suspended"
    if post.deleted:
        return "post_deleted"
    if consent is None or consent.choice != "allow":
        return "consent_withdrawn"
    if post.excluded:
        return "post_excluded"
    if post.visibility == "public":
        pass
    elif post.visibility == "unlisted" and consent.include_unlisted:
        pass
    else:
        return "visibility_narrowed"
    if consent.effective_from is not None and post.published_at < consent.effective_from:
        return "outside_consent_scope"
    return None
