"""Every URL the API hands out, built in one place from WHARF_PUBLIC_URL.

Layout (documented in README.md): session URLs carry the session id, which is derived
from the session token (tokens.session_id_for); the stage URL carries the token itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.records import FileRecord, SessionRecord


@dataclass(frozen=True)
class Links:
    public_url: str

    def session(self, session: SessionRecord) -> str:
        return f"{self.public_url}/upload/sessions/{session.id}"

    def stage(self, session: SessionRecord) -> str:
        return f"{self.public_url}/stage/{session.token}/"

    def file(self, file: FileRecord) -> str:
        return f"{self.public_url}/upload/sessions/{file.session_id}/files/{file.id}"
