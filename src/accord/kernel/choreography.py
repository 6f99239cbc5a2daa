"""Choreography: taking handoffs and announcements, the initiating team's ledger."""

from __future__ import annotations

from fractions import Fraction

from accord.errors import (
    NotFound,
    TaskStateError,
)
from accord.events import EventType
from accord.kernel.actions import (
    Announce,
    ArriveToken,
    CloseCase,
    EndBranch,
    RejectHandoff,
    ReturnToken,
)
from accord.kernel.graph import is_news
from accord.kernel.state import (
    CaseStatus,
    Token,
)
from accord.kernel.stepbase import (
    _Base,
    _share,
    check_data,
)


class _Choreography(_Base):
    """Part of the kernel's _Step: handoffs, announcements, the ledger."""

    def arrive(self) -> None:
        a = self.a
        assert isinstance(a, ArriveToken)
        flow = self.d.flow_by_id.get(a.flow)
        if flow is None:
            raise NotFound(f"{self.d.key} has no flow {a.flow!r}")
        if self.scope is not None and self.scope.elsewhere(
            flow.target, self.owner_of(flow.target, a.data or self.s.data)
        ):
            owner = self.owner_of(flow.target, a.data or self.s.data)
            raise TaskStateError(
                f"a handoff to {flow.target!r} belongs to team {owner!r}, not {self.scope.team!r}"
            )
        self.require_running("take a handoff")
        check_data(a.data, "handoff data")
        # a message into a message step carries news, not a share of the case
        weight = "0" if is_news(self.d, flow) and a.weight == "0" else _share(a.weight)
        self.merge(a.data, a.versions)
        self.propagate([(flow, Token(tuple(a.origin), weight))])

    def announce(self) -> None:
        a = self.a
        assert isinstance(a, Announce)
        if not self.d.is_join(a.join):
            raise NotFound(f"{a.join!r} is not a join of {self.d.key}")
        known = {f.id for f in self.d.incoming[a.join]}
        if not set(a.flows) <= known:
            raise NotFound(f"{a.join!r} has no incoming flows {sorted(set(a.flows) - known)}")
        self.s.expect.setdefault(a.join, []).append(sorted(a.flows))
        self.propagate([])

    def reject_handoff(self) -> None:
        a = self.a
        assert isinstance(a, RejectHandoff)
        self.emit(
            EventType.HANDOFF_REJECTED,
            step=a.from_step or None,
            team=a.from_team,
            data={
                "flow": a.flow,
                "from_team": a.from_team,
                "from_step": a.from_step,
                "by_team": self.scope.team if self.scope else None,
                "weight": a.weight,
                "errors": list(a.errors),
            },
        )

    def return_token(self) -> None:
        a = self.a
        assert isinstance(a, ReturnToken)
        if a.step not in self.d.steps:
            raise NotFound(f"no step {a.step!r} in {self.d.key}")
        self.require_running("take back a refused handoff")
        if a.flow and a.flow not in self.d.flow_by_id:
            raise NotFound(f"{self.d.key} has no flow {a.flow!r}")
        step = self.d.steps[a.step]
        tok = Token((), _share(a.weight))
        if a.flow and step.kind.is_work:
            self.create_task(a.step, tok, resend=a.flow)
        else:
            self.propagate([], enter=[(a.step, tok)])

    def end_branch(self) -> None:
        a = self.a
        assert isinstance(a, EndBranch)
        if self.scope is None or not self.scope.keeps_ledger:
            raise TaskStateError("only the initiating team keeps the ledger of ended branches")
        if a.terminate:
            self.withdraw_all()
            self.terminated = True
        self.tally(a.weight, a.terminate)

    def tally(self, weight: str, terminate: bool) -> None:
        """Add an ended branch to the ledger; the whole case ended when the shares reach 1."""
        total = Fraction(self.s.ended_weight) + Fraction(weight)
        self.s.ended_weight = str(total)
        if (total >= 1 or terminate) and not self.s.status.ended:
            self.s.status = CaseStatus.COMPLETED
            self.s.ended_at = self.at
            self.emit(
                EventType.CASE_COMPLETED,
                data={"cycle_s": self.at - self.s.started_at, "terminated": terminate},
            )

    def close(self) -> None:
        a = self.a
        assert isinstance(a, CloseCase)
        self.withdraw_all()
        self.s.status = CaseStatus.CANCELLED if a.outcome == "cancelled" else CaseStatus.COMPLETED
        self.s.ended_at = self.at
