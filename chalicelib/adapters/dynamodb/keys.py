"""Every key of the one table, built and parsed here and nowhere else.

Item layout (pk / sk):

    S#<session>   #SESSION          the publishing session
    S#<session>   F#<file>          a file upload session
    S#<session>   N#<filename key>  which file currently holds a filename in the session
    R#<project>#<release>  #LIVE    the one non-terminal session of a release (invariant 3)
    P#<project>   #PROJECT          the project: reserved by a first-release session, or registered
    P#<project>   ROLE#<user>       a user's role on the project
    P#<project>   C#<session>       commit marker: the session's files are published
    P#<project>   F#<release>#<filename key>  a filename of the release, reserved or published
    (a filename key is names.filename_key: one per distribution, however it is spelled)
    INDEX#projects  <project>       a registered project, for the simple API's root
    OUTBOX#expose   <session>       a commit whose files may not be public at the edge yet
    U#<user>      #USER
    U#<user>      TOKEN#<token id>  the user's token (for listing; written with T#)
    U#<user>      ROLE#<project>    the user's role (for listing; written with P# ROLE#)
    INDEX#users   <user>            a user, for the operator's list
    T#<token id>  #TOKEN            the token's hash, never the token
"""

from __future__ import annotations

from typing import Any

from ...domain.names import filename_key

Key = dict[str, Any]

SESSION_SK = "#SESSION"
PROJECT_SK = "#PROJECT"
USER_SK = "#USER"
TOKEN_SK = "#TOKEN"
LIVE_SK = "#LIVE"
PROJECT_INDEX = "INDEX#projects"
USER_INDEX = "INDEX#users"
EXPOSE_OUTBOX = "OUTBOX#expose"
FILE_PREFIX = "F#"  # a session's files, and a project's filenames
SLOT_PREFIX = "N#"
COMMIT_PREFIX = "C#"
ROLE_PREFIX = "ROLE#"
TOKEN_PREFIX = "TOKEN#"


def key(pk: str, sk: str) -> Key:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def session_pk(session_id: str) -> str:
    return f"S#{session_id}"


def session_id_of(pk: str) -> str:
    return pk.removeprefix("S#")


def session_key(session_id: str) -> Key:
    return key(session_pk(session_id), SESSION_SK)


def file_sk(file_id: str) -> str:
    return f"{FILE_PREFIX}{file_id}"


def file_id_of(sk: str) -> str:
    return sk.removeprefix(FILE_PREFIX)


def file_key(session_id: str, file_id: str) -> Key:
    return key(session_pk(session_id), file_sk(file_id))


def slot_sk(filename: str) -> str:
    """A session's slot for a filename, by the distribution it names (names.filename_key):
    `FOO-1.0-py3-none-any.whl` and `foo-1.0.0-py3-none-any.whl` share it."""
    return f"{SLOT_PREFIX}{filename_key(filename)}"


def slot_key(session_id: str, filename: str) -> Key:
    return key(session_pk(session_id), slot_sk(filename))


def live_pk(project: str, version_key: str) -> str:
    return f"R#{project}#{version_key}"


def live_key(project: str, version_key: str) -> Key:
    return key(live_pk(project, version_key), LIVE_SK)


def project_pk(project: str) -> str:
    return f"P#{project}"


def project_key(project: str) -> Key:
    return key(project_pk(project), PROJECT_SK)


def commit_sk(session_id: str) -> str:
    return f"{COMMIT_PREFIX}{session_id}"


def commit_key(project: str, session_id: str) -> Key:
    return key(project_pk(project), commit_sk(session_id))


def committed_session_of(sk: str) -> str:
    return sk.removeprefix(COMMIT_PREFIX)


def release_files_prefix(version_key: str) -> str:
    """What the sort keys of a release's filenames start with."""
    return f"{FILE_PREFIX}{version_key}#"


def published_sk(version_key: str, filename: str) -> str:
    return f"{release_files_prefix(version_key)}{filename_key(filename)}"


def published_key(project: str, version_key: str, filename: str) -> Key:
    return key(project_pk(project), published_sk(version_key, filename))


def user_pk(username: str) -> str:
    return f"U#{username}"


def user_key(username: str) -> Key:
    return key(user_pk(username), USER_SK)


def token_pk(token_id: str) -> str:
    return f"T#{token_id}"


def token_key(token_id: str) -> Key:
    return key(token_pk(token_id), TOKEN_SK)


def user_token_sk(token_id: str) -> str:
    return f"{TOKEN_PREFIX}{token_id}"


def token_id_of(sk: str) -> str:
    return sk.removeprefix(TOKEN_PREFIX)


def role_sk(name: str) -> str:
    """A role as the project holds it (ROLE#<user>) and as the user does (ROLE#<project>)."""
    return f"{ROLE_PREFIX}{name}"


def role_holder_of(sk: str) -> str:
    return sk.removeprefix(ROLE_PREFIX)


def project_role_key(project: str, username: str) -> Key:
    return key(project_pk(project), role_sk(username))


def user_role_key(username: str, project: str) -> Key:
    return key(user_pk(username), role_sk(project))


def user_token_key(username: str, token_id: str) -> Key:
    return key(user_pk(username), user_token_sk(token_id))


def user_index_key(username: str) -> Key:
    return key(USER_INDEX, username)


def outbox_key(session_id: str) -> Key:
    return key(EXPOSE_OUTBOX, session_id)
