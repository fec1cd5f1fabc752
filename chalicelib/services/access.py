"""Authentication and per-request authorization (PEP 694 "Authentication and
Authorization"): every request resolves its token against current tokens, and every
session request checks the principal's current right to upload to the project."""

from __future__ import annotations

import hmac

from ..adapters.dynamodb import DynamoStore
from ..errors import Forbidden, Unauthorized
from ..records import ADMIN, UPLOAD_ROLES, Principal, ProjectStatus, SessionRecord
from ..states import SessionStatus
from ..tokens import ApiToken, credentials_from_header, same_secret


class Access:
    def __init__(self, store: DynamoStore, admin_token: str) -> None:
        self._store = store
        self._admin_token = admin_token

    def authenticate(self, authorization: str | None) -> Principal:
        secret = credentials_from_header(authorization)
        if secret is None:
            raise Unauthorized(
                "Send an API token as 'Authorization: Bearer <token>' or as HTTP Basic "
                "credentials with username '__token__' and the token as password."
            )
        if self._admin_token and hmac.compare_digest(secret.encode(), self._admin_token.encode()):
            return ADMIN
        parsed = ApiToken.parse(secret)
        record = self._store.get_token(parsed.token_id) if parsed else None
        if parsed is None or record is None or not same_secret(parsed.secret, record.secret_hash):
            raise Unauthorized("The token is not valid: it is unknown or was revoked.")
        return Principal(username=record.username, token_id=record.id, projects=record.projects)

    def authenticate_admin(self, authorization: str | None) -> None:
        if self.authenticate(authorization) is not ADMIN:
            raise Forbidden("The operator API needs the admin token.")

    def may_upload(
        self, principal: Principal, project: str, session: SessionRecord | None = None
    ) -> bool:
        """May `principal` upload to `project` (or act on `session`) right now?

        A name nobody holds may be registered by any authenticated principal (the
        index's name-registration policy); a reserved name belongs, while any of its
        first-release sessions is live, to the principal that created them (PEP 694
        SHOULD). A first-release session that did not publish is its creator's alone,
        also once it ended: its status and session token are nobody else's."""
        if principal.is_admin:
            return True
        if not principal.token_allows(project):
            return False
        if (
            session is not None
            and session.first_release
            and session.status is not SessionStatus.PUBLISHED
            and session.created_by != principal.username
        ):
            return False
        assert principal.username is not None
        record = self._store.get_project(project)
        if record is None:
            return True
        if record.status is ProjectStatus.RESERVED:
            return record.reserved_for == principal.username
        return self._store.get_role(project, principal.username) in UPLOAD_ROLES

    def token_may_upload(self, token_id: str, session: SessionRecord) -> bool:
        """Does the token (by id) exist, and may it still upload to the session?"""
        record = self._store.get_token(token_id)
        if record is None:
            return False
        principal = Principal(
            username=record.username, token_id=record.id, projects=record.projects
        )
        return self.may_upload(principal, session.project, session)

    def require_upload(
        self, principal: Principal, project: str, session: SessionRecord | None = None
    ) -> None:
        if not self.may_upload(principal, project, session):
            raise Forbidden(f"This token may not upload to project {project!r}.")
