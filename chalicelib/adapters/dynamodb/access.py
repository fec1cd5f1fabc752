"""Users, tokens and roles (the AccessStore port), and the writes that grant a role or
require a registered project, which sessions and publishing put in their transactions."""

from __future__ import annotations

from ...domain.ports import AlreadyExists, UnknownUser
from ...domain.records import ProjectRecord, ProjectStatus, Role, TokenRecord
from . import keys
from .items import encode, project_record, token_record
from .table import ConditionFailed, Table, Write


def role_puts(project: str, username: str, role: Role) -> list[Write]:
    """The role as the project holds it (for authorization) and as the user does (for
    listing), always written together."""
    return [
        {"Put": {"Item": encode(item)}}
        for item in (
            {"pk": keys.project_pk(project), "sk": keys.role_sk(username), "role": role.value},
            {"pk": keys.user_pk(username), "sk": keys.role_sk(project), "role": role.value},
        )
    ]


def registered_check(project: str) -> Write:
    """A release of a registered project: never of a name reserved, or free."""
    return {
        "ConditionCheck": {
            "Key": keys.project_key(project),
            "ConditionExpression": "#status = :registered",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":registered": {"S": ProjectStatus.REGISTERED.value}},
        }
    }


class DynamoAccess:
    def __init__(self, table: Table) -> None:
        self._t = table

    def create_user(self, username: str, now: int) -> None:
        user = {"pk": keys.user_pk(username), "sk": keys.USER_SK, "created_at": now}
        listed = {"pk": keys.USER_INDEX, "sk": username, "created_at": now}
        try:
            self._t.transact(
                [
                    {
                        "Put": {
                            "Item": encode(user),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"Item": encode(listed)}},
                ]
            )
        except ConditionFailed as refusal:
            if refusal.at(0):
                raise AlreadyExists(username) from None
            raise

    def user_created_at(self, username: str) -> int | None:
        item = self._t.get(keys.user_key(username))
        return int(item["created_at"]) if item else None

    def users(self) -> list[tuple[str, int]]:
        """(username, created at) of every user, by name."""
        return [(item["sk"], int(item["created_at"])) for item in self._t.query(keys.USER_INDEX)]

    def delete_user(self, username: str) -> bool:
        """Revoke the user's tokens and roles, then remove the user. False if unknown."""
        if self.user_created_at(username) is None:
            return False
        for item in self._t.query(keys.user_pk(username), keys.TOKEN_PREFIX):
            self.delete_token(keys.token_id_of(item["sk"]))
        for item in self._t.query(keys.user_pk(username), keys.ROLE_PREFIX):
            self.delete_role(keys.role_holder_of(item["sk"]), username)
        self._t.transact(
            [
                {"Delete": {"Key": keys.user_key(username)}},
                {"Delete": {"Key": keys.user_index_key(username)}},
            ]
        )
        return True

    def put_token(self, token: TokenRecord) -> None:
        listed = {
            "description": token.description,
            "projects": sorted(token.projects) if token.projects is not None else None,
            "created_at": token.created_at,
        }
        secret = {"username": token.username, "secret_hash": token.secret_hash}
        self._transact_for_user(
            token.username,
            [
                {
                    "Put": {
                        "Item": encode(
                            {
                                "pk": keys.token_pk(token.id),
                                "sk": keys.TOKEN_SK,
                                **secret,
                                **listed,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "Item": encode(
                            {
                                "pk": keys.user_pk(token.username),
                                "sk": keys.user_token_sk(token.id),
                                **listed,
                            }
                        )
                    }
                },
            ],
        )

    def _transact_for_user(self, username: str, items: list[Write]) -> None:
        """Write `items` only while the user exists, so that nothing granted races a
        delete_user into a token or role that outlives its user."""
        check = {
            "ConditionCheck": {
                "Key": keys.user_key(username),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        try:
            self._t.transact([check, *items])
        except ConditionFailed as refusal:
            if refusal.at(0):
                raise UnknownUser(username) from None
            raise

    def get_token(self, token_id: str) -> TokenRecord | None:
        item = self._t.get(keys.token_key(token_id))
        return token_record(token_id, item) if item else None

    def user_tokens(self, username: str) -> list[TokenRecord]:
        found = (
            self.get_token(keys.token_id_of(item["sk"]))
            for item in self._t.query(keys.user_pk(username), keys.TOKEN_PREFIX)
        )
        return [token for token in found if token is not None]

    def delete_token(self, token_id: str) -> bool:
        token = self.get_token(token_id)
        if token is None:
            return False
        self._t.transact(
            [
                {"Delete": {"Key": keys.token_key(token_id)}},
                {"Delete": {"Key": keys.user_token_key(token.username, token_id)}},
            ]
        )
        return True

    def put_role(self, project: str, username: str, role: Role) -> None:
        self._transact_for_user(username, role_puts(project, username, role))

    def delete_role(self, project: str, username: str) -> bool:
        try:
            self._t.transact(
                [
                    {
                        "Delete": {
                            "Key": keys.project_role_key(project, username),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {"Delete": {"Key": keys.user_role_key(username, project)}},
                ]
            )
        except ConditionFailed as refusal:
            if refusal.at(0):
                return False
            raise
        return True

    def get_standing(self, project: str, username: str) -> tuple[ProjectRecord | None, Role | None]:
        """The project (as get_project) and the user's role on it, in one round trip: what
        every authorization of an upload reads."""
        item, role = self._t.get_many(
            keys.project_key(project), keys.project_role_key(project, username)
        )
        return project_record(project, item), Role(role["role"]) if role else None

    def project_roles(self, project: str) -> list[tuple[str, Role]]:
        """(username, role) of everyone with a role on the project, by name."""
        return self._roles(keys.project_pk(project))

    def user_roles(self, username: str) -> list[tuple[str, Role]]:
        """(project, role) of every role the user holds, by project."""
        return self._roles(keys.user_pk(username))

    def _roles(self, pk: str) -> list[tuple[str, Role]]:
        return [
            (keys.role_holder_of(item["sk"]), Role(item["role"]))
            for item in self._t.query(pk, keys.ROLE_PREFIX)
        ]
