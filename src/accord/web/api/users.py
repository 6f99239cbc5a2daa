"""Users and API tokens (admins), and who am I (everyone)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from accord.web import policy
from accord.web.accounts import Accounts, User
from accord.web.api.schemas import NewToken, TokenIn, TokenOut, UserIn, UserOut, when
from accord.web.deps import api_user, csrf_token, get_accounts
from accord.web.problems import ProblemError, responses

log = logging.getLogger("accord.web")
router = APIRouter(tags=["users"], responses=responses(401, 403, 422))
UserId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]


class MeOut(UserOut):
    csrf_token: str


def _out(u: User) -> UserOut:
    return UserOut(id=u.id, name=u.name, teams=list(u.teams), roles=list(u.roles))


@router.get("/me", response_model=MeOut)
def me(request: Request, user: Annotated[User, Depends(api_user)]) -> MeOut:
    """The signed-in user, with the CSRF token their browser's API calls must send."""
    return MeOut(**_out(user).model_dump(), csrf_token=csrf_token(request))


@router.get("/users", response_model=list[UserOut])
def list_users(
    user: Annotated[User, Depends(api_user)],
    accounts: Annotated[Accounts, Depends(get_accounts)],
) -> list[UserOut]:
    """Every user (admins)."""
    policy.admin(user)
    return [_out(u) for u in accounts.users()]


@router.post("/users", response_model=UserOut, status_code=201, responses=responses(409))
def add_user(
    body: UserIn,
    user: Annotated[User, Depends(api_user)],
    accounts: Annotated[Accounts, Depends(get_accounts)],
) -> UserOut:
    """Add a user (admins). Without a password the user signs in with tokens only."""
    policy.admin(user)
    if accounts.get(body.id) is not None:
        raise ProblemError(409, f"user {body.id!r} already exists")
    added = accounts.add(body.id, name=body.name, password=body.password, teams=body.teams,
                         roles=body.roles)  # fmt: skip
    log.info("%s added user %s", user.id, added.id)
    return _out(added)


@router.get("/users/{user_id}", response_model=UserOut, responses=responses(404))
def get_user(
    user_id: UserId,
    user: Annotated[User, Depends(api_user)],
    accounts: Annotated[Accounts, Depends(get_accounts)],
) -> UserOut:
    """One user (admins, or the user themselves)."""
    if user_id != user.id:
        policy.admin(user)
    found = accounts.get(user_id)
    if found is None:
        raise ProblemError(404, f"no user {user_id!r}")
    return _out(found)


@router.delete("/users/{user_id}", status_code=204, responses=responses(404, 409))
def remove_user(
    user_id: UserId,
    user: Annotated[User, Depends(api_user)],
    accounts: Annotated[Accounts, Depends(get_accounts)],
) -> Response:
    """Remove a user with their sessions and tokens (admins; not yourself)."""
    policy.admin(user)
    if user_id == user.id:
        raise ProblemError(409, "you cannot remove yourself")
    if not accounts.remove(user_id):
        raise ProblemError(404, f"no user {user_id!r}")
    log.info("%s removed user %s", user.id, user_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/tokens", response_model=list[TokenOut], responses=responses(404))
def list_tokens(
    user_id: UserId,
    user: Annotated[User, Depends(api_user)],
    accounts: Annotated[Accounts, Depends(get_accounts)],
) -> list[TokenOut]:
    """A user's API tokens, without their secrets (admins, or the user themselves)."""
    if user_id != user.id:
        policy.admin(user)
    if accounts.get(user_id) is None:
        raise ProblemError(404, f"no user {user_id!r}")
    return [
        TokenOut(id=t.id, user_id=t.user_id, name=t.name, created_at=when(t.created_at),
                 last_used_at=when(t.last_used_at))
        for t in accounts.tokens(user_id)
    ]  # fmt: skip


@router.post(
    "/users/{user_id}/tokens", response_model=NewToken, status_code=201, responses=responses(404)
)
def issue_token(
    user_id: UserId,
    body: TokenIn,
    user: Annotated[User, Depends(api_user)],
    accounts: Annotated[Accounts, Depends(get_accounts)],
) -> NewToken:
    """Issue a bearer token (admins, or the user for themselves). Shown once."""
    if user_id != user.id:
        policy.admin(user)
    if accounts.get(user_id) is None:
        raise ProblemError(404, f"no user {user_id!r}")
    secret = accounts.issue_token(user_id, body.name)
    info = next(t for t in accounts.tokens(user_id) if secret.startswith(f"acc_{t.id}_"))
    log.info("%s issued token %s for %s", user.id, info.id, user_id)
    return NewToken(id=info.id, user_id=user_id, name=info.name, created_at=when(info.created_at),
                    last_used_at=None, token=secret)  # fmt: skip


@router.delete("/tokens/{token_id}", status_code=204, responses=responses(404))
def revoke_token(
    token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{8}$")],
    user: Annotated[User, Depends(api_user)],
    accounts: Annotated[Accounts, Depends(get_accounts)],
) -> Response:
    """Revoke a token (admins, or its owner)."""
    owned = [t for t in accounts.tokens() if t.id == token_id]
    if not owned:
        raise ProblemError(404, f"no token {token_id!r}")
    if owned[0].user_id != user.id:
        policy.admin(user)
    accounts.revoke_token(token_id)
    log.info("%s revoked token %s", user.id, token_id)
    return Response(status_code=204)
