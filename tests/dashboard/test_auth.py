from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys import service as apikeys
from tests.dashboard.support import bearer_key, csrf_token, dashboard_client, sign_in


async def test_no_session_redirects_to_sign_in(app: object) -> None:
    async with dashboard_client(app) as client:
        for path in ("/dashboard", "/dashboard/movements", "/dashboard/today"):
            response = await client.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == "/dashboard/sign-in"


async def test_sign_in_page_is_a_form_with_api_key_and_strict_headers(app: object) -> None:
    async with dashboard_client(app) as client:
        response = await client.get("/dashboard/sign-in")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'name="api_key"' in response.text and 'method="post"' in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in response.text  # no inline script, only <script src=...>
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_bad_key_is_a_form_error(app: object) -> None:
    async with dashboard_client(app) as client:
        response = await sign_in(client, "sk_000000000000_nope")
        assert response.status_code == 401
        assert 'id="sign-in-error"' in response.text and 'name="api_key"' in response.text
        assert "stratum_session" not in response.headers.get("set-cookie", "")
        assert (await client.get("/dashboard")).status_code == 303


async def test_key_without_read_scope_is_refused(app: object, session: AsyncSession) -> None:
    _, key = await apikeys.create(session, name="writer only", scopes=["write"])
    async with dashboard_client(app) as client:
        response = await sign_in(client, key)
        assert response.status_code == 403
        assert "read scope" in response.text
        assert (await client.get("/dashboard")).status_code == 303


async def test_sign_in_sets_a_safe_expiring_cookie_and_leads_to_dashboard(
    app: object, reader: dict[str, str], session: AsyncSession
) -> None:
    key = bearer_key(reader)
    async with dashboard_client(app, https=True) as client:
        response = await sign_in(client, key)
        assert response.status_code == 303 and response.headers["location"] == "/dashboard"
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("stratum_session=")
        )
        flags = cookie.lower()
        assert "httponly" in flags and "samesite=lax" in flags and "secure" in flags
        assert "max-age=28800" in flags and "path=/dashboard" in flags
        token = cookie.split(";")[0].split("=", 1)[1]
        assert key not in cookie and token not in response.headers["location"]
        # Only the token's hash is stored.
        stored = (await session.execute(text("SELECT token_hash FROM dashboard_sessions"))).all()
        assert [r[0] for r in stored] == [hashlib.sha256(token.encode()).hexdigest()]
        page = await client.get("/dashboard")
        assert page.status_code == 200 and key not in page.text


async def test_cookie_not_secure_over_plain_http(app: object, reader: dict[str, str]) -> None:
    async with dashboard_client(app) as client:
        response = await sign_in(client, bearer_key(reader))
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("stratum_session=")
        )
        assert "secure" not in cookie.lower() and "httponly" in cookie.lower()


async def test_sign_in_without_the_form_token_is_rejected(
    app: object, reader: dict[str, str]
) -> None:
    async with dashboard_client(app) as client:
        await client.get("/dashboard/sign-in")
        response = await client.post(
            "/dashboard/sign-in", data={"api_key": bearer_key(reader), "csrf_token": "forged"}
        )
        assert response.status_code == 403
        assert (await client.get("/dashboard")).status_code == 303


async def test_sign_out_needs_the_session_token_and_ends_the_session(
    app: object, reader: dict[str, str]
) -> None:
    async with dashboard_client(app) as client:
        await sign_in(client, bearer_key(reader))
        page = await client.get("/dashboard")
        assert page.status_code == 200
        forged = await client.post("/dashboard/sign-out", data={"csrf_token": "x"})
        assert forged.status_code == 403
        assert (await client.get("/dashboard")).status_code == 200
        signed_out = await client.post(
            "/dashboard/sign-out", data={"csrf_token": csrf_token(page.text)}
        )
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/dashboard/sign-in"
        assert (await client.get("/dashboard")).status_code == 303


async def test_a_stolen_cookie_is_useless_after_sign_out(
    app: object, reader: dict[str, str]
) -> None:
    async with dashboard_client(app) as client:
        await sign_in(client, bearer_key(reader))
        token = client.cookies["stratum_session"]
        page = await client.get("/dashboard")
        await client.post("/dashboard/sign-out", data={"csrf_token": csrf_token(page.text)})
    async with dashboard_client(app) as other:
        other.cookies.set("stratum_session", token, domain="stratum.test", path="/dashboard")
        assert (await other.get("/dashboard")).status_code == 303


async def test_expired_session_and_revoked_key_lead_back_to_sign_in(
    app: object, session: AsyncSession, reader: dict[str, str]
) -> None:
    async with dashboard_client(app) as client:
        await sign_in(client, bearer_key(reader))
        assert (await client.get("/dashboard")).status_code == 200
        await session.execute(
            text("UPDATE dashboard_sessions SET expires_at = now() - interval '1 second'")
        )
        await session.commit()
        assert (await client.get("/dashboard")).status_code == 303

    _, key = await apikeys.create(session, name="soon revoked", scopes=["read"])
    async with dashboard_client(app) as client:
        await sign_in(client, key)
        assert (await client.get("/dashboard")).status_code == 200
        await apikeys.revoke(session, prefix=key.split("_")[1])
        assert (await client.get("/dashboard")).status_code == 303


async def test_static_assets_are_served(app: object) -> None:
    async with dashboard_client(app) as client:
        css = await client.get("/dashboard/static/dashboard.css")
        js = await client.get("/dashboard/static/dashboard.js")
        missing = await client.get("/dashboard/static/../../pyproject.toml")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert missing.status_code == 404


async def test_api_bearer_auth_is_unchanged(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/segments/overview")).status_code == 401
