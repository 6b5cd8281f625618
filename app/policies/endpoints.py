from __future__ import annotations

from fastapi import APIRouter

from app.core.auth import AdminAccess
from app.core.openapi import AUTHED, problems
from app.core.session_deps import SessionDep
from app.policies import service
from app.policies.schemas import PolicyBody, PolicyRead

router = APIRouter(prefix="/v1/policy", tags=["policy"])


@router.get(
    "",
    response_model=PolicyRead,
    summary="The classification policy in force, with its version",
    responses=problems(*AUTHED),
)
async def get_policy(session: SessionDep, _: AdminAccess) -> PolicyRead:
    return service.to_read(await service.current_policy(session))


@router.put(
    "",
    response_model=PolicyRead,
    summary="Replace the policy (creates a new version)",
    description="Takes the whole document. An invalid document is rejected with 422 and "
    "nothing changes. `version` and `created_at` in the body are ignored.",
    responses=problems(*AUTHED, 413, 415),
)
async def put_policy(body: PolicyBody, session: SessionDep, _: AdminAccess) -> PolicyRead:
    return service.to_read(await service.replace(session, document=body.document()))
