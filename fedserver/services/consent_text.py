"""How the consent text is shown: its structure read from the versioned text itself (paragraphs, and
its list of "- " items as a list), the sentence that says copies used in training cannot be recalled
marked so the page can make it stand out, and each licence's meaning in one plain line. The words
are exactly the versioned text's (its hash is what a person's choice records), only laid out."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fedserver.corpus.terms import CONSENT_TERMS, LICENSES, Terms

# The one consequence that withdrawing cannot undo; the page must not let it drown in the list.
IRREVOCABLE = "cannot be recalled"

LICENSE_MEANINGS = {
    "CC0-1.0": "No conditions: anyone given your posts may use them for anything, without naming you.",
    "CC-BY-4.0": "Anyone given your posts may use them for anything, as long as they credit each post "
                 "(by its record id: your name is not in the dataset).",
    "CC-BY-SA-4.0": "As CC-BY, and what they make from your posts must be shared under this same licence.",
}
assert set(LICENSE_MEANINGS) == set(LICENSES), "every licence offered needs its plain meaning"


@dataclass(frozen=True)
class Line:
    """One paragraph or list item: its text, and the sentence of it to make stand out (or '')."""
    text: str
    warning: str = ""


@dataclass(frozen=True)
class Block:
    kind: str  # "paragraph" | "list"
    lines: tuple[Line, ...]


def _line(text: str) -> Line:
    """Split off the sentence that says what cannot be recalled, when this line has it."""
    at = text.find(IRREVOCABLE)
    if at < 0:
        return Line(text)
    start = text.rfind(". ", 0, at)
    start = start + 2 if start >= 0 else 0
    return Line(text[:start].rstrip(), text[start:].strip())


@lru_cache(maxsize=4)
def structure(terms: Terms = CONSENT_TERMS) -> tuple[Block, ...]:
    """The text's blocks: blank lines separate them; a block whose lines start with "- " is a list
    (an item's wrapped lines are indented); the rest are paragraphs, their line breaks spaces."""
    blocks = []
    for chunk in terms.text.strip().split("\n\n"):
        lines = chunk.split("\n")
        if lines[0].startswith("- "):
            items: list[str] = []
            for line in lines:
                if line.startswith("- "):
                    items.append(line[2:].strip())
                else:
                    items[-1] += " " + line.strip()
            blocks.append(Block("list", tuple(_line(item) for item in items)))
        else:
            blocks.append(Block("paragraph", (_line(" ".join(line.strip() for line in lines)),)))
    return tuple(blocks)
