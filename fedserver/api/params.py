"""One reading of a request's parameters, whatever the app sent: the query string, a form
(urlencoded or multipart) or a JSON body. Ice Cubes sends POST parameters in the query string,
masto.js sends JSON, Mastodon.py forms and JSON (client-api.md §4, §5.6); all look the same here.
Arrays come as `name[]=` (forms) or JSON lists; nested JSON objects flatten to `poll[options][]`."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from fedserver.api.errors import ApiError

_TRUE = ("1", "true", "on", "yes", "t")
_FALSE = ("0", "false", "off", "no", "f", "")


class Params:
    def __init__(self) -> None:
        self._values: dict[str, list[Any]] = {}
        # A JSON body as sent: nested attributes keep their structure there (records()).
        self.json_body: dict[str, Any] = {}

    def add(self, name: str, value: Any) -> None:
        self._values.setdefault(name, []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        for value in self._values.get(name, ()):
            if isinstance(value, str):
                return value
        return default

    def text(self, name: str) -> str:
        return self.get(name) or ""

    def list(self, name: str) -> list[str]:
        """`name[]` values (and `name` itself, for JSON lists and apps that leave out the brackets)."""
        values = [*self._values.get(f"{name}[]", ()), *self._values.get(name, ())]
        return [value for value in values if isinstance(value, str)]

    def records(self, name: str) -> list[dict[str, str]]:
        """Nested attributes such as `fields_attributes`: form style `name[0][key]` (or a hash
        `name[key][...]`), or a JSON list (or object) of objects. In index order."""
        nested = self.json_body.get(name)
        if isinstance(nested, dict):
            nested = list(nested.values())
        if isinstance(nested, list):
            return [{key: _scalar_text(value) for key, value in item.items() if _scalar_text(value) is not None}
                    for item in nested if isinstance(item, dict)]
        indexed: dict[str, dict[str, str]] = {}
        listed: dict[str, list[str]] = {}
        prefix = f"{name}["
        for key, values in self._values.items():
            if not key.startswith(prefix) or not key.endswith("]"):
                continue
            parts = key[len(prefix):-1].split("][")
            if len(parts) != 2:
                continue
            texts = [value for value in values if isinstance(value, str)]
            if parts[0] == "":
                listed[parts[1]] = texts
            elif texts:
                indexed.setdefault(parts[0], {})[parts[1]] = texts[0]
        out = [indexed[k] for k in sorted(indexed, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))]
        if listed:
            out += [{key: texts[i] for key, texts in listed.items() if i < len(texts)}
                    for i in range(max(len(texts) for texts in listed.values()))]
        return out

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ApiError(422, f"{name} must be true or false")

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError(422, f"{name} must be a whole number") from None

    def file(self, name: str) -> web.FileField | None:
        for value in self._values.get(name, ()):
            if isinstance(value, web.FileField):
                return value
        return None


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


def _flatten(params: Params, prefix: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        params.add(prefix, "true" if value else "false")
    elif isinstance(value, (int, float, str)):
        params.add(prefix, str(value))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                _flatten(params, f"{prefix}[]", item)
            else:
                _flatten(params, prefix, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _flatten(params, f"{prefix}[{key}]" if prefix else str(key), item)


async def read_params(request: web.Request) -> Params:
    params = Params()
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.body_exists:
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = json.loads(await request.read() or b"{}")
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "the request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "the request body must be a JSON object")
            params.json_body = body
            _flatten(params, "", body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                form = await request.post()
            except ValueError:  # not UTF-8 (UnicodeDecodeError), a broken multipart body...
                raise ApiError(400, "the request body is not a valid form") from None
            for name, value in form.items():
                params.add(name, value)
    for name, value in request.query.items():
        params.add(name, value)
    return params
