"""The deterministic process semantics: pure functions, no I/O, no clock, no randomness."""

from accord.kernel.actions import (
    AnyAction,
    CancelCase,
    ClaimTask,
    CompleteTask,
    FailTask,
    FireTimer,
    PauseCase,
    ReassignTask,
    ReceiveMessage,
    ReleaseTask,
    RerouteCase,
    ResumeCase,
    RetryTask,
    StartCase,
)
from accord.kernel.advance import Transition, advance, digest, replay
from accord.kernel.commands import CancelTimer, Command, OfferTask, RunHandler, ScheduleTimer
from accord.kernel.state import CaseState, CaseStatus, Task, TaskStatus, Timer, TimerKind

__all__ = [
    "AnyAction",
    "CancelCase",
    "CancelTimer",
    "CaseState",
    "CaseStatus",
    "ClaimTask",
    "Command",
    "CompleteTask",
    "FailTask",
    "FireTimer",
    "OfferTask",
    "PauseCase",
    "ReassignTask",
    "ReceiveMessage",
    "ReleaseTask",
    "RerouteCase",
    "ResumeCase",
    "RetryTask",
    "RunHandler",
    "ScheduleTimer",
    "StartCase",
    "Task",
    "TaskStatus",
    "Timer",
    "TimerKind",
    "Transition",
    "advance",
    "digest",
    "replay",
]
