"""Negotiation: issues raised about work, answered, escalated, ruled, settled."""

from __future__ import annotations

from typing import Any

from accord.errors import (
    ConflictError,
    NotFound,
    TaskStateError,
)
from accord.events import EventType
from accord.kernel.actions import (
    AnswerIssue,
    IssueReply,
    NoteIssue,
    RaiseIssue,
    RuleIssue,
)
from accord.kernel.scope import HUB
from accord.kernel.state import (
    ACTIVE,
    CaseStatus,
    TaskStatus,
    TimerKind,
    Token,
)
from accord.kernel.stepbase import (
    ISSUE_ACTIONS,
    _Base,
)


class _Negotiation(_Base):
    """Part of the kernel's _Step: issues raised, answered, escalated, ruled."""

    def issue(self, issue_id: str) -> dict[str, Any]:
        found = self.s.issues.get(issue_id)
        if found is None:
            raise NotFound(f"no issue {issue_id!r} in case {self.s.case_id}")
        return found

    def owner_team(self) -> str | None:
        """Who has the final word: the process owner's team (the hub when there is no scope)."""
        if self.scope is None:
            return HUB
        for team in self.d.teams.values():
            if any(m.id == self.d.owner for m in team.members) or team.id == self.d.owner:
                return team.id
        return self.scope.initiator

    def raise_issue(self) -> None:
        a = self.a
        assert isinstance(a, RaiseIssue)
        t = self.task(a.task_id)
        if t.status not in (TaskStatus.READY, TaskStatus.CLAIMED):
            raise TaskStateError(f"task {t.id} is {t.status.value}; raise issues on open work")
        if a.at_fault not in self.d.steps:
            raise NotFound(f"no step {a.at_fault!r} in {self.d.key}")
        if a.proposal not in ISSUE_ACTIONS:
            raise ConflictError(f"proposal must be one of {', '.join(ISSUE_ACTIONS)}")
        self.require_running("raise an issue")
        self.s.counter += 1
        iid = f"{self.s.case_id}:issue:{self.s.counter}"
        to_team = HUB if self.scope is None else self.owner_of(a.at_fault, self.s.data)
        self.s.issues[iid] = {
            "role": "raiser",
            "task": t.id,
            "step": t.step,
            "at_fault": a.at_fault,
            "proposal": a.proposal,
            "round": 1,
            "max_rounds": a.max_rounds,
            "state": "open",
            "to_team": to_team,
            "raised_at": self.at,
        }
        self.emit(
            EventType.ISSUE_RAISED,
            step=t.step,
            team=t.team,
            task=t.id,
            data={
                "issue": iid,
                "at_fault": a.at_fault,
                "to_team": to_team,
                "from_team": self.scope.team if self.scope else t.team,
                "proposal": a.proposal,
                "evidence": a.evidence,
                "round": 1,
                "by": "raiser",
            },
        )
        self.schedule(TimerKind.ISSUE, iid, self.at + a.deadline_s)

    def note_issue(self) -> None:
        a = self.a
        assert isinstance(a, NoteIssue)
        self.s.issues[a.issue] = {
            "role": a.role,
            "raised_by": a.raised_by,
            "step": a.step,
            "at_fault": a.at_fault,
            "proposal": a.proposal,
            "round": a.round,
            "state": "to answer" if a.role == "respond" else "to rule",
        }

    def answer_issue(self) -> None:
        a = self.a
        assert isinstance(a, AnswerIssue)
        issue = self.issue(a.issue)
        if issue["state"] in ("resolved", "answered"):
            raise TaskStateError(f"issue {a.issue} is {issue['state']}")
        if issue["role"] == "raiser":
            # the other side countered and this team decides: take it, or counter again
            if a.accept:
                self.settle_issue(a.issue, issue["proposal"], EventType.ISSUE_RESOLVED)
                return
            issue["round"] += 1
            if issue["round"] > issue.get("max_rounds", 3):
                self.escalate_issue(a.issue, "no agreement")
                return
            issue["proposal"] = a.proposal or issue["proposal"]
            issue["state"] = "open"
            self.emit(
                EventType.ISSUE_COUNTERED,
                step=issue["step"],
                data={
                    "issue": a.issue,
                    "proposal": issue["proposal"],
                    "round": issue["round"],
                    "to_team": issue["to_team"],
                    "by": "raiser",
                },
            )
            return
        issue["state"] = "answered"
        etype = EventType.ISSUE_ACCEPTED if a.accept else EventType.ISSUE_COUNTERED
        proposal = issue["proposal"] if a.accept else (a.proposal or "waive")
        self.emit(
            etype,
            step=issue["at_fault"],
            data={
                "issue": a.issue,
                "proposal": proposal,
                "round": issue["round"],
                "to_team": issue["raised_by"],
                "by": "respondent",
            },
        )

    def rule_issue(self) -> None:
        a = self.a
        assert isinstance(a, RuleIssue)
        if a.action not in ISSUE_ACTIONS:
            raise ConflictError(f"a ruling is one of {', '.join(ISSUE_ACTIONS)}")
        issue = self.issue(a.issue)
        if issue["role"] == "raiser":  # the hub rules on its own case (central)
            self.settle_issue(a.issue, a.action, EventType.ISSUE_RULED)
            return
        issue["state"] = "ruled"
        self.emit(
            EventType.ISSUE_RULED,
            step=issue["at_fault"],
            data={"issue": a.issue, "action": a.action, "to_team": issue["raised_by"]},
        )

    def issue_reply(self) -> None:
        a = self.a
        assert isinstance(a, IssueReply)
        issue = self.issue(a.issue)
        if issue["state"] == "resolved":
            return
        if a.reply == "accepted":
            self.settle_issue(a.issue, issue["proposal"], EventType.ISSUE_RESOLVED)
        elif a.reply == "ruled":
            self.settle_issue(a.issue, a.proposal, None)
        else:
            issue["proposal"] = a.proposal or issue["proposal"]
            issue["round"] = a.round
            issue["state"] = "countered"

    def escalate_issue(self, issue_id: str, why: str) -> None:
        issue = self.s.issues.get(issue_id)
        if issue is None or issue["state"] in ("resolved", "escalated"):
            return
        issue["state"] = "escalated"
        self.emit(
            EventType.ISSUE_ESCALATED,
            step=issue["step"],
            data={
                "issue": issue_id,
                "why": why,
                "proposal": issue["proposal"],
                "round": issue["round"],
                "at_fault": issue["at_fault"],
                "to_team": self.owner_team(),
                "from_team": self.scope.team if self.scope else None,
            },
        )

    def settle_issue(self, issue_id: str, action: str, etype: EventType | None) -> None:
        """The raising team carries out what was agreed (or ruled)."""
        issue = self.issue(issue_id)
        issue["state"] = "resolved"
        self.cancel_timers(issue_id)
        task = self.s.tasks.get(issue["task"])
        weight = task.weight if task is not None else "0"
        to_team = self.owner_of(issue["at_fault"], self.s.data) if self.scope is not None else None
        self.emit(
            etype or EventType.ISSUE_RESOLVED,
            step=issue["step"],
            data={
                "issue": issue_id,
                "action": action,
                "at_fault": issue["at_fault"],
                "to_team": to_team,
                "weight": weight,
                "rounds": issue["round"],
            },
        )
        if action == "cancel":
            self.withdraw_all()
            self.s.status = CaseStatus.CANCELLED
            self.s.ended_at = self.at
            self.emit(EventType.CASE_CANCELLED, data={"reason": f"issue {issue_id}"})
        elif action == "rework" and task is not None and task.status in ACTIVE:
            self.cancel_task(task)
            if self.scope is None or not self.scope.elsewhere(issue["at_fault"], to_team):
                self.propagate([], enter=[(issue["at_fault"], Token((), weight))])
            # else: the team at fault takes it from the resolved event (ReturnToken)
