"""Turning what a local person typed into post HTML: escaping, links, @mentions and #hashtags."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

# A handle is @user or @user@host (host may carry a port in local testing).
MENTION_RE = re.compile(r"(?<![\w/@])@([a-zA-Z0-9_]+(?:[.-][a-zA-Z0-9_]+)*)(?:@([a-zA-Z0-9.-]+(?::\d+)?))?")
HASHTAG_RE = re.compile(r"(?<![\w/&#])#(\w*[^\W\d_]\w*)")
# C0 controls other than tab and newline have no place in a post (and HTML cannot carry NUL).
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
URL_RE = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


@dataclass(frozen=True)
class MentionTarget:
    actor_uri: str
    profile_url: str
    handle: str  # @user@host


def find_mentions(text: str, local_domain: str) -> list[str]:
    """Handles mentioned in the text as user@host (local ones get the local domain), in order, unique."""
    seen: list[str] = []
    for match in _spans(text, MENTION_RE):
        user, host = match.group(1), match.group(2) or local_domain
        handle = f"{user}@{host}"
        if handle.lower() not in (h.lower() for h in seen):
            seen.append(handle)
    return seen


def find_hashtags(text: str) -> list[str]:
    tags: list[str] = []
    for match in _spans(text, HASHTAG_RE):
        tag = match.group(1).lower()
        if tag not in tags:
            tags.append(tag)
    return tags


def _spans(text: str, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    """Matches of pattern outside URLs (a '#' in a link fragment is not a hashtag)."""
    url_spans = [m.span() for m in URL_RE.finditer(text)]
    return [m for m in pattern.finditer(text)
            if not any(start <= m.start() < end for start, end in url_spans)]


def render_html(text: str, *, mentions: dict[str, MentionTarget], tag_url, local_domain: str) -> str:
    """Plain text to HTML: paragraphs on blank lines, <br> on newlines, links, mentions, hashtags.
    mentions maps lower-cased user@host to its resolved target; unresolved handles stay plain text."""
    text = CONTROL_RE.sub("", text.replace("\r\n", "\n"))
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    rendered = []
    for paragraph in paragraphs:
        lines = [_render_line(line, mentions, tag_url, local_domain) for line in paragraph.split("\n")]
        rendered.append("<p>" + "<br>".join(lines) + "</p>")
    return "".join(rendered)


def _render_line(line: str, mentions: dict[str, MentionTarget], tag_url, local_domain: str) -> str:
    tokens: list[tuple[int, int, str]] = []
    for match in URL_RE.finditer(line):
        url = match.group(0)
        tokens.append((match.start(), match.end(),
                       f'<a href="{html.escape(url)}" rel="nofollow noopener noreferrer" target="_blank">'
                       f"{html.escape(url)}</a>"))
    for match in _spans(line, MENTION_RE):
        user, host = match.group(1), match.group(2) or local_domain
        target = mentions.get(f"{user}@{host}".lower())
        if target is None:
            continue
        tokens.append((match.start(), match.end(),
                       f'<span class="h-card"><a href="{html.escape(target.profile_url)}" class="u-url mention">'
                       f"@<span>{html.escape(user)}</span></a></span>"))
    for match in _spans(line, HASHTAG_RE):
        tag = match.group(1)
        tokens.append((match.start(), match.end(),
                       f'<a href="{html.escape(tag_url(tag.lower()))}" class="mention hashtag" rel="tag">'
                       f"#<span>{html.escape(tag)}</span></a>"))
    tokens.sort()
    out: list[str] = []
    position = 0
    for start, end, markup in tokens:
        if start < position:
            continue  # overlapping match (e.g. a handle inside a URL): the first wins
        out.append(html.escape(line[position:start]))
        out.append(markup)
        position = end
    out.append(html.escape(line[position:]))
    return "".join(out)
