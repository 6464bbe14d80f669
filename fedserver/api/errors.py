"""The client API's errors: `{"error": ...}` bodies with the statuses Mastodon answers."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


class ApiError(Exception):
    """Raised anywhere below an API handler; the API middleware turns it into its JSON answer."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def unauthorized(message: str = "The access token is invalid") -> ApiError:
    return ApiError(401, message)


def forbidden(message: str = "This action is outside the authorized scopes") -> ApiError:
    return ApiError(403, message)


def not_found(message: str = "Record not found") -> ApiError:
    return ApiError(404, message)


def unprocessable(message: str) -> ApiError:
    # Mastodon's validation failures and "This method requires an authenticated user".
    return ApiError(422, message)


def too_many(message: str = "Too many requests") -> ApiError:
    return ApiError(429, message)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    """`_headers` in extra are sent as headers, the rest goes into the body."""
    headers = dict(extra.pop("_headers", None) or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="Doorkeeper", error="invalid_token"'
    return json_response({"error": message, **extra}, status=status, headers=headers or None)
