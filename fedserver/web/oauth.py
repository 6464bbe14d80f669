"""The page where a person lets an app act for them (/oauth/authorize), and the settings page that
lists the apps they let in, each revocable. The API's token endpoints are in api/oauth.py."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from aiohttp import web

from fedserver.services import oauth
from fedserver.services import scopes as scope_rules
from fedserver.services.oauth import AuthorizationRequest, OAuthError
from fedserver.web.common import ctx_of, redirect, render, require_viewer, viewer_of
from fedserver.web.page_headers import content_security_policy_with_form_targets

# The authorization request's own parameters, carried from the page to its form.
FIELDS = ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method")
_TRUE = ("1", "true", "yes", "on")


def _guarded(response: web.StreamResponse) -> web.StreamResponse:
    """The question and the code pages: never inside another site's frame (a framed Authorize
    button can be clicked for the person: clickjacking, RFC 6749 §10.13), never cached (the oob
    code is a credential until used)."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def _with_params(uri: str, params: dict[str, str]) -> str:
    separator = "&" if urlsplit(uri).query else "?"
    return uri + separator + urlencode(params)


async def _refused(request: web.Request, message: str) -> web.Response:
    return await render(request, "error.html", status=400, message=message)


async def _checked(request: web.Request, values) -> AuthorizationRequest | web.StreamResponse:
    """The request checked, or the page that says why not. Errors are not sent back to the redirect
    URI on their own: anyone can register an app with any redirect URI, so an automatic error
    redirect would make this server an open redirector (RFC 9700 §4.11.2). The app hears back
    only after the person chose (Authorize or Deny)."""
    ctx = ctx_of(request)
    redirect_uri = str(values.get("redirect_uri", ""))
    try:
        app = await oauth.check_app_and_redirect(ctx, str(values.get("client_id", "")), redirect_uri)
    except OAuthError as exc:
        return await _refused(request, exc.description)
    try:
        return oauth.check_grant_request(
            app, redirect_uri, response_type=str(values.get("response_type", "")),
            scope=str(values.get("scope", "")) or None, code_challenge=str(values.get("code_challenge", "")) or None,
            code_challenge_method=str(values.get("code_challenge_method", "")) or None)
    except OAuthError as exc:
        return await _refused(request, f"{app.name} asked for something this server cannot grant: "
                                       f"{exc.description} ({exc.error})")


def _back_to_app(redirect_uri: str, params: dict[str, str], state: str) -> web.Response:
    if state:
        params = {**params, "state": state}
    # A plain 302 to wherever the app registered (custom schemes included), not a page redirect.
    return web.Response(status=302, headers={"Location": _with_params(redirect_uri, params)})


async def authorize_page(request: web.Request) -> web.StreamResponse:
    checked = await _checked(request, request.query)
    if not isinstance(checked, AuthorizationRequest):
        return checked
    viewer = viewer_of(request)
    # The return path: this same page with the same query, minus force_login (once signed in again,
    # the person should see the question, not another sign-in).
    kept = [(key, value) for key, value in request.query.items() if key in FIELDS]
    back = f"{request.path}?{urlencode(kept)}"
    if viewer is None:
        raise web.HTTPSeeOther(f"/auth/sign_in?{urlencode({'next': back})}")
    if request.query.get("force_login", "").lower() in _TRUE:
        # force_login: the app lets someone add a second account, so ask who is signing in even
        # though a session exists; signing in replaces the session, then the question follows.
        return _guarded(await render(request, "auth/sign_in.html", next=back,
                                     notice=f"{checked.app.name} asks you to sign in, to choose the account it "
                                            "may use."))
    page = _guarded(await render(request, "oauth/authorize.html", app=checked.app,
                                 scopes=scope_rules.describe(checked.scopes), fields=dict(kept),
                                 handle=f"@{viewer.username}@{ctx_of(request).urls.domain}"))
    if not checked.is_oob:
        # Authorize and Deny answer with a redirect to the app: the policy must let the form go there.
        page.headers["Content-Security-Policy"] = content_security_policy_with_form_targets(
            ctx_of(request).settings.instance.scheme, [checked.redirect_uri])
    return page


@require_viewer
async def authorize_decision(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    checked = await _checked(request, form)
    if not isinstance(checked, AuthorizationRequest):
        return checked
    viewer = viewer_of(request)
    assert viewer is not None
    state = str(form.get("state", ""))
    if form.get("decision") != "authorize":
        if checked.is_oob:
            return _guarded(await render(request, "oauth/code.html", app=checked.app, code=None))
        return _back_to_app(checked.redirect_uri, {"error": "access_denied",
                                                   "error_description": "The person denied the request."}, state)
    code = await oauth.issue_code(ctx_of(request), checked, viewer.actor)
    if checked.is_oob:
        # urn:ietf:wg:oauth:2.0:oob: the person copies the code into the app (CLI tools, bots).
        return _guarded(await render(request, "oauth/code.html", app=checked.app, code=code))
    return _back_to_app(checked.redirect_uri, {"code": code}, state)


@require_viewer
async def apps_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    assert viewer is not None
    apps = await oauth.authorized_apps(ctx_of(request), viewer.actor)
    return await render(request, "settings/apps.html", apps=apps)


@require_viewer
async def revoke_app(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    try:
        app_id = int(request.match_info["app_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    await oauth.revoke_app_for(ctx_of(request), viewer.actor, app_id)
    return redirect("/settings/apps", flash="The app can no longer use your account.")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/oauth/authorize", authorize_page)
    r.add_post("/oauth/authorize", authorize_decision)
    r.add_get("/settings/apps", apps_page)
    r.add_post(r"/settings/apps/{app_id:\d+}/revoke", revoke_app)
