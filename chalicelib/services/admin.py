"""The operator API: users, API tokens and project roles."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..domain.errors import Conflict, FieldError, Invalid, NotFound
from ..domain.names import InvalidInput, normalize_name
from ..domain.ports import AccessStore, AlreadyExists, Clock, UnknownUser
from ..domain.records import Role, TokenRecord
from ..domain.tokens import ApiToken, is_random_id, secret_hash

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class UserView:
    username: str
    created_at: int
    tokens: list[TokenRecord]  # their hashes are not shown
    roles: list[tuple[str, Role]]  # (project, role)


@dataclass(frozen=True)
class IssuedToken:
    """The only moment the token text exists outside the client: it is stored hashed."""

    record: TokenRecord
    text: str


class AdminService:
    def __init__(self, store: AccessStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create_user(self, username: str) -> None:
        if not USERNAME.fullmatch(username):
            raise Invalid(
                "Usernames are 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit.",
                [FieldError("username", "invalid")],
            )
        try:
            self._store.create_user(username, self._clock.now())
        except AlreadyExists:
            raise Conflict(f"The user {username!r} already exists.") from None

    def _require_user(self, username: str) -> int:
        """The user's creation time; 404 for an unknown user."""
        created_at = self._store.user_created_at(username) if USERNAME.fullmatch(username) else None
        if created_at is None:
            raise NotFound(f"No user {username!r}.")
        return created_at

    def users(self) -> list[tuple[str, int]]:
        return self._store.users()

    def user(self, username: str) -> UserView:
        created_at = self._require_user(username)
        return UserView(
            username=username,
            created_at=created_at,
            tokens=self._store.user_tokens(username),
            roles=self._store.user_roles(username),
        )

    def delete_user(self, username: str) -> None:
        """Every token of the user stops working, and every role is gone, before the user
        record is."""
        if not USERNAME.fullmatch(username) or not self._store.delete_user(username):
            raise NotFound(f"No user {username!r}.")

    def issue_token(
        self, username: str, description: str, projects: list[str] | None
    ) -> IssuedToken:
        self._require_user(username)
        scope = None
        if projects is not None:
            try:
                scope = frozenset(normalize_name(p) for p in projects)
            except InvalidInput as exc:
                raise Invalid(str(exc), [FieldError("projects", str(exc))]) from None
        token = ApiToken.new()
        record = TokenRecord(
            id=token.token_id,
            username=username,
            secret_hash=secret_hash(token.secret),
            description=description,
            projects=scope,
            created_at=self._clock.now(),
        )
        try:
            self._store.put_token(record)
        except UnknownUser:
            raise NotFound(f"No user {username!r}.") from None
        return IssuedToken(record=record, text=token.text)

    def revoke_token(self, token_id: str) -> None:
        if not is_random_id(token_id) or not self._store.delete_token(token_id):
            raise NotFound("No such token.")

    def grant_role(self, project: str, username: str, role: str) -> tuple[str, Role]:
        name = self._project(project)
        try:
            parsed = Role(role)
        except ValueError:
            raise Invalid(
                f"{role!r} is not a role; use one of: {', '.join(r.value for r in Role)}.",
                [FieldError("role", "unknown role")],
            ) from None
        try:
            if not USERNAME.fullmatch(username):
                raise UnknownUser(username)
            self._store.put_role(name, username, parsed)
        except UnknownUser:
            raise NotFound(f"No user {username!r}.") from None
        return name, parsed

    def project_roles(self, project: str) -> tuple[str, list[tuple[str, Role]]]:
        name = self._project(project)
        return name, self._store.project_roles(name)

    def revoke_role(self, project: str, username: str) -> None:
        name = self._project(project)
        if not USERNAME.fullmatch(username) or not self._store.delete_role(name, username):
            raise NotFound(f"{username!r} has no role on {project!r}.")

    @staticmethod
    def _project(project: str) -> str:
        try:
            return normalize_name(project)
        except InvalidInput as exc:
            raise Invalid(str(exc), [FieldError("name", str(exc))]) from None
