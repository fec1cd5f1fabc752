"""What readers of the index see (the IndexStore port): registered projects, and files
whose publish committed.

Publishing more files than one transaction holds stays atomic for readers (invariant 2):
filenames are first written as reservations tagged with the session, then one
transaction writes the session's commit marker. Readers list commit markers *before*
files, and show a file only when its session's marker was seen, so a reader sees all of a
session's files or none of them."""

from __future__ import annotations

from packaging.version import Version

from ...domain.names import release_key
from ...domain.records import Commit, PublishedFile
from . import keys
from .items import Item, published_record
from .table import Table


def if_committed(table: Table, project: str, item: Item | None) -> PublishedFile | None:
    """A filename item as a published file, unless it is only reserved (its session's
    commit marker is not there)."""
    if item is None or table.get(keys.commit_key(project, item["session"])) is None:
        return None
    return published_record(project, item)


class DynamoIndex:
    def __init__(self, table: Table) -> None:
        self._t = table

    def project_names(self) -> list[str]:
        """Registered projects, for the simple API's root."""
        return [item["sk"] for item in self._t.query(keys.PROJECT_INDEX)]

    def published_file(self, project: str, version_key: str, filename: str) -> PublishedFile | None:
        """The published file of that name in the release, if its publish committed."""
        item = self._t.get(keys.published_key(project, version_key, filename))
        return if_committed(self._t, project, item)

    def commits(self, project: str) -> dict[str, Commit]:
        """The sessions whose publish of this project has committed (their markers)."""
        return {
            keys.committed_session_of(item["sk"]): Commit(
                # Markers written before they kept the key: the key of their version.
                item.get("version_key") or release_key(Version(item["version"])),
                item.get("committed_at"),
            )
            for item in self._t.query(keys.project_pk(project), keys.COMMIT_PREFIX)
        }

    def published_files(
        self,
        project: str,
        committed: frozenset[str] | None = None,
        *,
        version_key: str | None = None,
    ) -> list[PublishedFile]:
        """Every published file of the project, as the simple API lists them.

        Commit markers are read first (or given, as read by the caller just before): a
        file whose marker was seen was written before that marker, so it is there when
        the files are read next; a publish that commits between the two reads is left
        out whole (invariant 2)."""
        if committed is None:
            committed = frozenset(self.commits(project))
        prefix = keys.FILE_PREFIX if version_key is None else keys.release_files_prefix(version_key)
        return [
            published_record(project, item)
            for item in self._t.query(keys.project_pk(project), prefix)
            if item["session"] in committed
        ]
