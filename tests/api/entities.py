"""Strict checks of API entities against Mastodon's documentation as Mastodon.py encodes it
(mastodon/return_types.py: every field's type, nullability and the version that added it).
Mastodon.py itself casts leniently and would not notice a missing field, so tests check the raw
JSON here: every field Mastodon 4.3 documents as non-nullable is present with its type, ids are
numeric strings, dates have three fractional digits and a Z, image URLs are absolute."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mastodon

# The version the server reports (serializers.MASTODON_VERSION).
TARGET_VERSION = (4, 3, 0)
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMERIC_ID = re.compile(r"^\d{1,19}$")
URL_FIELDS = {"avatar", "avatar_static", "header", "header_static", "url", "uri", "preview_url"}
# Deliberate departures, each for a reason apps give (none at present: the streaming URLs are sent
# now that streaming works).
ALLOWED_OMISSIONS: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Field:
    annotation: str
    added: tuple[int, ...]
    nullable: bool


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@lru_cache(maxsize=1)
def documented_entities() -> dict[str, dict[str, Field]]:
    source = (Path(mastodon.__file__).with_name("return_types.py")).read_text(encoding="utf-8")
    entities: dict[str, dict[str, Field]] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        fields: dict[str, Field] = {}
        for i, item in enumerate(node.body):
            if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
                continue
            annotation = item.annotation.value if isinstance(item.annotation, ast.Constant) else ast.unparse(
                item.annotation)
            following = node.body[i + 1] if i + 1 < len(node.body) else None
            doc = following.value.value if isinstance(following, ast.Expr) and isinstance(
                following.value, ast.Constant) else ""
            added = re.findall(r"\* ([\d.]+): added", doc)
            nullable = annotation.startswith("Optional[") or bool(re.search(r"\((nullable|optional)", doc))
            fields[item.target.id] = Field(annotation, _version(added[0]) if added else (0,), nullable)
        entities[node.name] = fields
    return entities


def check(entity: str, value: Any, path: str = "") -> list[str]:
    """Problems with `value` as the named entity (empty when it conforms)."""
    where = path or entity
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    problems = []
    for name, field in documented_entities()[entity].items():
        if field.added > TARGET_VERSION:
            continue
        if name not in value:
            if not field.nullable and (entity, name) not in ALLOWED_OMISSIONS:
                problems.append(f"{where}.{name}: missing")
            continue
        if value[name] is None:
            if not field.nullable:
                problems.append(f"{where}.{name}: null, documented as non-nullable")
            continue
        problems += _check_type(field.annotation, value[name], f"{where}.{name}", name)
    return problems


def _check_type(annotation: str, value: Any, where: str, name: str) -> list[str]:
    inner = re.fullmatch(r"Optional\[(.*)\]", annotation)
    if inner:
        annotation = inner.group(1)
    listed = re.fullmatch(r"(?:NonPaginatableList|PaginatableList|List)\[(.*)\]", annotation)
    if listed or annotation in ("NonPaginatableList", "PaginatableList", "list"):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [p for i, item in enumerate(value) for p in
                (_check_type(listed.group(1), item, f"{where}[{i}]", name) if listed else [])]
    if annotation in ("str", "EntityId"):
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {value!r}"]
        if name in URL_FIELDS and where != "Instance.uri" and not re.match(r"^https?://[^/]+/", value):
            return [f"{where}: expected an absolute URL, got {value!r}"]
        return []
    if annotation in ("IdType", "MaybeSnowflakeIdType"):
        return [] if isinstance(value, str) and NUMERIC_ID.match(value) else [f"{where}: id {value!r} not numeric"]
    if annotation == "bool":
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean, got {value!r}"]
    if annotation == "int":
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{where}: expected an integer"]
    if annotation == "float":
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{where}: not a number"]
    if annotation == "datetime" and name == "day":
        # TagHistory.day: Mastodon sends the day's start as a UNIX timestamp string (its docs,
        # entities/Tag.md, and what Tusky and Ice Cubes decode); Mastodon.py parses it.
        return [] if isinstance(value, str) and value.isdigit() else [f"{where}: {value!r} not a UNIX day"]
    if annotation == "datetime":
        if name == "last_status_at":  # documented as a date since Mastodon 3.1
            return [] if isinstance(value, str) and DATE.match(value) else [f"{where}: {value!r} not YYYY-MM-DD"]
        return [] if isinstance(value, str) and DATETIME.match(value) else [f"{where}: {value!r} not a 3-digit date"]
    if annotation in documented_entities():
        return check(annotation, value, where)
    if annotation in ("AttribAccessDict", "dict"):
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    return []


def assert_entity(entity: str, value: Any) -> None:
    problems = check(entity, value)
    assert not problems, "\n".join(problems)
