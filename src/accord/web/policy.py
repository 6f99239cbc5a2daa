"""Who may do what: the authorization rules of the HTTP API and the web pages, in one place.

Roles (a user holds one or more): ``member``, ``lead``, ``owner`` (process owner) and
``admin``. *Operators* are the owners of a process and the admins. The rules (docs/web.md
draws them as a matrix, and tests/web/test_authz.py checks every cell):

- everyone signed in reads processes, cases, tasks, events, metrics and boards;
- **member**: claims, completes and fails tasks of their own teams, releases the tasks they
  hold, starts cases of processes their teams take part in;
- **lead**: as a member, plus, in their own teams, releases and reassigns other people's
  tasks and retries failed tasks; pauses and resumes cases of processes their teams take part
  in;
- **owner**: operator of the processes whose ``owner`` is their id or one of their teams:
  pause, resume, cancel, reroute, retry, reassign, start, and deploy new versions;
- **admin**: everything, including users and tokens.

A decision returns the *actor* the engine records: the user's own id when they act on their own
work, ``operator:ID`` when they act with authority over someone else's (the kernel lets only
operators and the hub act on a task another member holds). The actor always comes from the
signed-in user, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from accord.model.types import ProcessDefinition
from accord.stores.base import TaskRow
from accord.web.accounts import User


class Denied(Exception):
    """The user may not do this; ``reason`` says why (it becomes the 403 problem's detail)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Grant:
    """Permission to act, and as whom the engine records it."""

    actor: str


def operator(user: User) -> str:
    """The actor name of a user acting with authority (an operator, or a lead)."""
    return f"operator:{user.id}"


def owns(user: User, d: ProcessDefinition) -> bool:
    """Whether the user is an operator of ``d``: an admin, or an owner it names."""
    if user.is_admin:
        return True
    return (
        "owner" in user.roles
        and d.owner is not None
        and (d.owner == user.id or d.owner in user.teams)
    )


def takes_part(user: User, d: ProcessDefinition) -> bool:
    """Whether one of the user's teams has a lane in ``d``."""
    return any(t in d.teams for t in user.teams)


def leads(user: User, team: str | None) -> bool:
    """Whether the user is a lead of ``team``."""
    return team is not None and "lead" in user.roles and team in user.teams


def start(user: User, d: ProcessDefinition) -> Grant:
    """Start a case of ``d``."""
    if owns(user, d) or takes_part(user, d):
        return Grant(user.id)
    raise Denied(f"none of your teams takes part in {d.key}, and you are not its operator")


def deploy(user: User, d: ProcessDefinition, current: ProcessDefinition | None) -> Grant:
    """Deploy ``d`` (a new process, or a new version of ``current``)."""
    if user.is_admin:
        return Grant(operator(user))
    if "owner" not in user.roles:
        raise Denied("only process owners and admins deploy processes")
    if not owns(user, d):
        raise Denied(f"{d.key} names {d.owner or 'no one'} as its owner, not you or your team")
    if current is not None and not owns(user, current):
        raise Denied(f"{current.key} is owned by {current.owner}; you cannot replace it")
    return Grant(operator(user))


def work(user: User, task: TaskRow, what: str) -> Grant:
    """Claim, complete or fail ``task``: members of its team; admins as operators."""
    if task.team is not None and task.team in user.teams:
        return Grant(user.id)
    if user.is_admin:
        return Grant(operator(user))
    team = task.team or "no team"
    raise Denied(f"task {task.id} belongs to {team}; only its members may {what} it")


def release(user: User, task: TaskRow) -> Grant:
    """Give a claimed task back: its holder, a lead of its team, an admin."""
    if task.assignee == user.id and (task.team is None or task.team in user.teams):
        return Grant(user.id)
    if leads(user, task.team) or user.is_admin:
        return Grant(operator(user))
    if task.team is not None and task.team in user.teams:
        raise Denied(f"task {task.id} is held by {task.assignee}; only a lead may release it")
    raise Denied(f"task {task.id} belongs to {task.team}; you are not in that team")


def reassign(user: User, task: TaskRow, d: ProcessDefinition, to_team: str | None) -> Grant:
    """Move a task to another member or team: a lead within their own teams, operators."""
    if owns(user, d):
        return Grant(operator(user))
    if leads(user, task.team) and (to_team is None or to_team in user.teams):
        return Grant(operator(user))
    raise Denied("only a lead of the task's team (within their teams) or an operator reassigns")


def retry(user: User, task: TaskRow, d: ProcessDefinition) -> Grant:
    """Run a failed task again: a lead of its team, operators."""
    if owns(user, d) or leads(user, task.team):
        return Grant(operator(user))
    raise Denied("only a lead of the task's team or an operator of the process retries it")


def pause_resume(user: User, d: ProcessDefinition, what: str) -> Grant:
    """Pause or resume a case: leads of a team in the process, operators."""
    if owns(user, d):
        return Grant(operator(user))
    if "lead" in user.roles and takes_part(user, d):
        return Grant(operator(user))
    raise Denied(f"only leads of a team in {d.key} and its operators may {what} its cases")


def cancel_reroute(user: User, d: ProcessDefinition, what: str) -> Grant:
    """Cancel or reroute a case: operators only (the process owner, admins)."""
    if owns(user, d):
        return Grant(operator(user))
    raise Denied(f"only operators of {d.key} (its owner, admins) may {what} its cases")


def admin(user: User) -> Grant:
    """Manage users and tokens."""
    if user.is_admin:
        return Grant(operator(user))
    raise Denied("only admins manage users")
