"""The dashboard's pages: each handler checks the session, calls one service, renders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from app.core.problems import Forbidden, Problem
from app.core.session_deps import SessionDep
from app.dashboard import auth, service
from app.dashboard.auth import SESSION_COOKIE, SIGN_IN_COOKIE, Viewer
from app.dashboard.web import STATIC, STATIC_TYPES, STATIC_VERSION, page_language, redirect, render

router = APIRouter(prefix="/dashboard", include_in_schema=False)

SIGN_IN = "/dashboard/sign-in"
Text = Annotated[str | None, Query(max_length=64)]
Cursor = Annotated[str | None, Query(max_length=200)]


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the first value of each); anything else is empty."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = (await request.body())[:16384].decode("utf-8", errors="replace")
    fields = parse_qs(body, max_num_fields=10, keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


async def _page(
    request: Request,
    session: SessionDep,
    build: Callable[[Viewer], Awaitable[Response]],
) -> Response:
    """Sign-in first; a problem (unknown segment, bad filter) becomes an error page."""
    viewer = await auth.viewer(request, session)
    if viewer is None:
        return redirect(request, SIGN_IN)
    try:
        return await build(viewer)
    except Problem as problem:
        return render(
            request, "error.html", status=problem.status, viewer=viewer, problem=problem, page=""
        )


# -- sign-in --------------------------------------------------------------------------


def _sign_in_form(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    token = auth.new_token()
    response = render(
        request, "sign_in.html", status=status, viewer=None, csrf_token=token, error=error, page=""
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
        path=SIGN_IN,
    )
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request, session: SessionDep) -> Response:
    if await auth.viewer(request, session) is not None:
        return redirect(request, "/dashboard")
    return _sign_in_form(request)


@router.post("/sign-in")
async def sign_in(request: Request, session: SessionDep) -> Response:
    form = await _form(request)
    if not auth.tokens_match(request.cookies.get(SIGN_IN_COOKIE), form.get("csrf_token")):
        return _sign_in_form(request, error="bad_form", status=403)
    try:
        token = await auth.sign_in(
            session,
            routing=request.app.state.reads,
            api_key=form.get("api_key", ""),
            cache=request.app.state.key_cache,
        )
    except auth.SignInRefused as refused:
        return _sign_in_form(request, error=refused.reason, status=refused.status)
    response = redirect(request, "/dashboard")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(auth.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
        path="/dashboard",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    viewer = await auth.viewer(request, session)
    if viewer is None:
        return redirect(request, SIGN_IN)
    form = await _form(request)
    if not auth.tokens_match(viewer.csrf_token, form.get("csrf_token")):
        return render(
            request,
            "error.html",
            status=403,
            viewer=viewer,
            problem=Forbidden("The form expired; reload the page and try again"),
            page="",
        )
    await auth.sign_out(session, viewer=viewer)
    response = redirect(request, SIGN_IN)
    response.delete_cookie(SESSION_COOKIE, path="/dashboard")
    return response


# -- pages ----------------------------------------------------------------------------


@router.get("")
async def overview(request: Request, session: SessionDep) -> Response:
    async def build(viewer: Viewer) -> Response:
        data = await service.overview_page(session)
        return render(request, "overview.html", viewer=viewer, data=data, page="overview")

    return await _page(request, session, build)


@router.get("/movements")
async def movements(
    request: Request,
    session: SessionDep,
    days: int = 7,
    from_tier: Text = None,
    to_tier: Text = None,
    from_stage: Text = None,
    to_stage: Text = None,
    first: bool = False,
    cursor: Cursor = None,
) -> Response:
    async def build(viewer: Viewer) -> Response:
        filters = service.movement_filter(
            from_tier=from_tier,
            to_tier=to_tier,
            from_stage=from_stage,
            to_stage=to_stage,
            include_first=first,
        )
        data = await service.movements_page(session, days=days, filters=filters, cursor=cursor)
        return render(
            request,
            "movements.html",
            viewer=viewer,
            data=data,
            filters=filters,
            windows=service.WINDOWS,
            page="movements",
        )

    return await _page(request, session, build)


@router.get("/segments")
async def segments(request: Request, session: SessionDep, cursor: Cursor = None) -> Response:
    async def build(viewer: Viewer) -> Response:
        data = await service.segments_page(session, cursor=cursor)
        return render(request, "segments.html", viewer=viewer, data=data, page="segments")

    return await _page(request, session, build)


SegmentKey = Annotated[str, Path(max_length=64)]


@router.get("/segments/{key}")
async def segment(
    request: Request,
    session: SessionDep,
    key: SegmentKey,
    country: Text = None,
    customer_type: Text = None,
    tier: Text = None,
    stage: Text = None,
    cursor: Cursor = None,
) -> Response:
    async def build(viewer: Viewer) -> Response:
        filters = service.member_filter(
            country=country, customer_type=customer_type, tier=tier, stage=stage
        )
        data = await service.segment_page(session, key=key, filters=filters, cursor=cursor)
        return render(request, "segment.html", viewer=viewer, data=data, page="segments")

    return await _page(request, session, build)


@router.get("/segments/{key}/members.csv")
async def segment_csv(
    request: Request,
    session: SessionDep,
    key: SegmentKey,
    country: Text = None,
    customer_type: Text = None,
    tier: Text = None,
    stage: Text = None,
) -> Response:
    async def build(viewer: Viewer) -> Response:
        filters = service.member_filter(
            country=country, customer_type=customer_type, tier=tier, stage=stage
        )
        await service.check_segment(session, key=key)
        safe_name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in key)
        rows = service.members_csv(request.app.state.sessionmaker, key=key, filters=filters)
        return StreamingResponse(
            rows,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{safe_name}.csv"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return await _page(request, session, build)


CustomerId = Annotated[str, Path(max_length=128)]


@router.get("/customers/{customer_id}")
async def customer(request: Request, session: SessionDep, customer_id: CustomerId) -> Response:
    async def build(viewer: Viewer) -> Response:
        data = await service.customer_page(
            session, customer_id=customer_id, lang=page_language(request)
        )
        return render(request, "customer.html", viewer=viewer, data=data, page="")

    return await _page(request, session, build)


@router.get("/today")
async def today(
    request: Request,
    session: SessionDep,
    strategy: Text = None,
    cursor: Cursor = None,
) -> Response:
    async def build(viewer: Viewer) -> Response:
        data = await service.today_page(
            session, lang=page_language(request), strategy=strategy, cursor=cursor
        )
        return render(
            request,
            "today.html",
            viewer=viewer,
            groups=data.groups,
            computed_at=data.computed_at,
            strategy=strategy,
            page="today",
        )

    return await _page(request, session, build)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    body = STATIC.get(name)
    if body is None:
        return Response(status_code=404)
    return Response(
        body,
        media_type=STATIC_TYPES[name],
        headers={
            "Cache-Control": "public, max-age=86400",
            "ETag": f'"{STATIC_VERSION}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
