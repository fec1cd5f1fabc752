"""Authentication and per-request authorization (PEP 694 "Authentication and
Authorization"): every request resolves its token against current tokens, and every
session request checks the principal's current right to upload to the project."""

from __future__ import annotations

import hmac

from ..domain.errors import NotAuthenticated, NotPermitted
from ..domain.ports import AccessStore
from ..domain.records import (
    ADMIN,
    UPLOAD_ROLES,
    FileRecord,
    Principal,
    ProjectRecord,
    ProjectStatus,
    Role,
    SessionRecord,
    TokenRecord,
)
from ..domain.states import SessionStatus
from ..domain.tokens import ApiToken, credentials_from_header, same_secret


def _principal(token: TokenRecord) -> Principal:
    return Principal(username=token.username, token_id=token.id, projects=token.projects)


def may_not_upload(project: str) -> NotPermitted:
    return NotPermitted(f"This token may not upload to project {project!r}.")


def _allowed_by(principal: Principal, record: ProjectRecord | None, role: Role | None) -> bool:
    """A free name is anyone's; a reserved one its creator's; a registered one needs a
    role that uploads."""
    if record is None:
        return True
    if record.status is ProjectStatus.RESERVED:
        return record.reserved_for == principal.username
    return role in UPLOAD_ROLES


class Access:
    def __init__(self, store: AccessStore, admin_token: str) -> None:
        self._store = store
        self._admin_token = admin_token

    def authenticate(self, authorization: str | None) -> Principal:
        secret = credentials_from_header(authorization)
        if secret is None:
            raise NotAuthenticated(
                "Send an API token as 'Authorization: Bearer <token>' or as HTTP Basic "
                "credentials with username '__token__' and the token as password."
            )
        if self._admin_token and hmac.compare_digest(secret.encode(), self._admin_token.encode()):
            return ADMIN
        parsed = ApiToken.parse(secret)
        record = self._store.get_token(parsed.token_id) if parsed else None
        if parsed is None or record is None or not same_secret(parsed.secret, record.secret_hash):
            raise NotAuthenticated("The token is not valid: it is unknown or was revoked.")
        return _principal(record)

    def authenticate_admin(self, authorization: str | None) -> None:
        if self.authenticate(authorization) is not ADMIN:
            raise NotPermitted("The operator API needs the admin token.")

    def may_upload(
        self, principal: Principal, project: str, session: SessionRecord | None = None
    ) -> bool:
        """May `principal` upload to `project` (or act on `session`) right now?

        A name nobody holds may be registered by any authenticated principal (the
        index's name-registration policy); a reserved name belongs, while any of its
        first-release sessions is live, to the principal that created them (PEP 694
        SHOULD). A first-release session that ended without publishing stays its
        creator's alone: its status and session token are nobody else's, also once the
        name is free or someone else's. (A live one follows the name's reservation or
        roles: PEP 694 sessions are not bound to the credentials that created them.)"""
        if principal.is_admin:
            return True
        if not principal.token_allows(project):
            return False
        if (
            session is not None
            and session.first_release
            and session.status is SessionStatus.CANCELED
            and session.created_by != principal.username
        ):
            return False
        assert principal.username is not None
        return _allowed_by(principal, *self._store.get_standing(project, principal.username))

    def standing(self, principal: Principal, project: str) -> tuple[ProjectRecord | None, bool]:
        """The project as it stands (as get_project) and whether the principal may upload
        to it, from one read: what creating a session needs."""
        record, role = self._store.get_standing(project, principal.username or "")
        if principal.is_admin:
            return record, True
        return record, principal.token_allows(project) and _allowed_by(principal, record, role)

    def revoked_signers(
        self, file: FileRecord, session: SessionRecord, *, trusted: str | None = None
    ) -> list[str]:
        """The tokens that had part URLs signed for the file and may no longer upload
        to its session (deleted, or their user lost the role); `trusted` was just
        authorized by the caller and is not looked up again."""
        revoked = []
        for token_id in sorted(file.signers - {trusted}):
            record = self._store.get_token(token_id)
            if record is None or not self.may_upload(_principal(record), session.project, session):
                revoked.append(token_id)
        return revoked

    def require_upload(
        self, principal: Principal, project: str, session: SessionRecord | None = None
    ) -> None:
        if not self.may_upload(principal, project, session):
            raise may_not_upload(project)
