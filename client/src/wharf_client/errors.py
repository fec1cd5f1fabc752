"""What can go wrong, by whose fault: each kind has its own exit code (cli.py), so a CI
script can tell a mistake in its own command from a refusal and from a network failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NETWORK = 4


class WharfClientError(Exception):
    exit_code = EXIT_UNEXPECTED


class UsageError(WharfClientError):
    """The command or its files are wrong: nothing was sent."""

    exit_code = EXIT_USAGE


class NetworkError(WharfClientError):
    """The server could not be reached, or kept failing, after retries."""

    exit_code = EXIT_NETWORK


@dataclass
class Problem:
    """An RFC 9457 problem document, or what stands for one when the answer is not."""

    status: int
    title: str
    detail: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_answer(cls, status: int, body: Any, reason: str) -> Problem:
        if not isinstance(body, dict):
            return cls(status, reason or f"HTTP {status}")
        errors = [
            {"source": str(e.get("source", "")), "message": str(e.get("message", ""))}
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
        return cls(
            status,
            str(body.get("title") or reason or f"HTTP {status}"),
            str(body.get("detail") or ""),
            errors,
        )

    def lines(self) -> list[str]:
        out = [f"{self.title} ({self.status})"]
        if self.detail:
            out.append(self.detail)
        out += [
            f"  {e['source']}: {e['message']}" if e["source"] else f"  {e['message']}"
            for e in self.errors
        ]
        return out


class Refused(WharfClientError):
    """The server answered, and said no (a 4xx, or a 5xx that persisted)."""

    exit_code = EXIT_REFUSED

    def __init__(self, problem: Problem, context: str = "") -> None:
        self.problem = problem
        self.context = context
        super().__init__("\n".join(([context] if context else []) + problem.lines()))
