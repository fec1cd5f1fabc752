"""A small IAM evaluator for the packaged template (build/template.yaml): which statements
each function's role holds, and whether they allow one request (action, resource, context).

It implements the part of IAM that Wharf's hand-written roles use, and refuses (raises
`Unsupported`) whatever it does not implement, so that a template it cannot read fails the
check instead of passing it. Resources are given the physical names the test suite uses
(`Deployment`), so the ARNs the roles name are the ARNs of the calls recorded under moto.

Decision, as IAM within one account: an explicit Deny that matches wins; otherwise a
matching Allow allows; otherwise the request is implicitly denied. Deny statements of
resource policies that apply to every principal (a bucket's TLS-only rule) count too;
their Allow statements do not: the roles must grant what the functions do by themselves.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
# A secret's ARN ends in "-" and six random characters; recorder and template use this one.
SECRET_SUFFIX = "AbCdEf"

Path = tuple[str | int, ...]


class Unsupported(Exception):
    """The template or a policy uses something this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    """One authorization check: what IAM evaluates for (part of) one API call."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    not_actions: bool = False  # `actions` came from NotAction
    not_resources: bool = False
    path: Path = ()  # where the statement is in the template (to report and to remove it)


# -- matching ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters (`/` and `:` included), `?` one character."""
    if "${" in pattern:
        raise Unsupported(f"policy variables are not supported: {pattern!r}")
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(value: str, pattern: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _string_equals(value: str, pattern: str) -> bool:
    return value == pattern


def _ignore_case(value: str, pattern: str) -> bool:
    return value.lower() == pattern.lower()


# Positive operators; a condition key absent from the request never matches them.
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals,
    "StringEqualsIgnoreCase": _ignore_case,
    "StringLike": like,
    "Bool": _ignore_case,
    "ArnEquals": like,  # ArnEquals and ArnLike both take wildcards
    "ArnLike": like,
}
# Negated operators: true when the key is absent, as IAM evaluates them.
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
# Keys every call of a Lambda function carries.
GLOBAL_CONTEXT = {"aws:securetransport": "true", "aws:requestedregion": REGION}


def condition_holds(condition: Condition, context: Mapping[str, str]) -> bool:
    """One operator and key of a Condition block; `context` keys are lower case."""
    operator = condition.operator
    if ":" in operator:  # ForAnyValue:/ForAllValues: are for multivalued keys
        raise Unsupported(f"condition operator {operator}")
    value = context.get(condition.key.lower())
    if operator == "Null":
        return any((value is None) == (v.lower() == "true") for v in condition.values)
    if operator.endswith("IfExists"):
        if value is None:
            return True
        operator = operator.removesuffix("IfExists")
    negated = operator in _NEGATED
    test = _OPERATORS.get(_NEGATED.get(operator, operator))
    if test is None:
        raise Unsupported(f"condition operator {condition.operator}")
    if value is None:
        return negated
    matched = any(test(value, pattern) for pattern in condition.values)
    return matched != negated


def matches(statement: Statement, request: Request) -> bool:
    action = any(like(request.action, a, ignore_case=True) for a in statement.actions)
    resource = any(like(request.resource, r) for r in statement.resources)
    if action == statement.not_actions or resource == statement.not_resources:
        return False
    context = GLOBAL_CONTEXT | {k.lower(): v for k, v in request.context}
    return all(condition_holds(c, context) for c in statement.conditions)


@dataclass(frozen=True)
class Policy:
    """The statements that decide one principal's requests."""

    statements: tuple[Statement, ...]

    def allowing(self, request: Request) -> list[Statement]:
        return [s for s in self.statements if s.effect == "Allow" and matches(s, request)]

    def allows(self, request: Request) -> bool:
        if any(s.effect == "Deny" and matches(s, request) for s in self.statements):
            return False
        return bool(self.allowing(request))


# -- policy documents ---------------------------------------------------------------------

_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


def _strings(value: Any, where: Path) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise Unsupported(f"{'/'.join(map(str, where))}: expected strings, got {value!r}")
    return tuple(values)


def parse_statement(raw: Mapping[str, Any], path: Path) -> Statement:
    """A resolved statement (no intrinsic functions left)."""
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise Unsupported(f"{'/'.join(map(str, path))}: statement keys {sorted(unknown)}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise Unsupported(f"{'/'.join(map(str, path))}: Effect {effect!r}")
    if ("Action" in raw) == ("NotAction" in raw) or ("Resource" in raw) == ("NotResource" in raw):
        raise Unsupported(f"{'/'.join(map(str, path))}: needs one of (Not)Action, (Not)Resource")
    conditions = tuple(
        Condition(operator, key, _strings(values, path))
        for operator, block in (raw.get("Condition") or {}).items()
        for key, values in block.items()
    )
    return Statement(
        effect=effect,
        actions=_strings(raw.get("Action", raw.get("NotAction")), path),
        resources=_strings(raw.get("Resource", raw.get("NotResource")), path),
        conditions=conditions,
        not_actions="NotAction" in raw,
        not_resources="NotResource" in raw,
        path=path,
    )


def _statement_list(holder: Mapping[str, Any], path: Path) -> Iterator[tuple[Any, Path]]:
    """The raw statements of the policy document in `holder`, each with its path in the
    template (resolved one by one, so that the paths stay those of the template)."""
    statements = holder["PolicyDocument"]["Statement"]
    path = (*path, "PolicyDocument", "Statement")
    if isinstance(statements, list):
        for index, raw in enumerate(statements):
            yield raw, (*path, index)
    else:
        yield statements, path


# -- the template ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """The physical values a template's resources take: here, the test suite's."""

    names: Mapping[str, str] = field(default_factory=dict)  # logical id -> physical name
    parameters: Mapping[str, str] = field(default_factory=dict)  # beyond their defaults
    conditions: Mapping[str, bool] = field(default_factory=dict)  # absent ones are false
    stack_name: str = "wharf"
    region: str = REGION
    account: str = ACCOUNT


class _NoValue:
    """AWS::NoValue: the element that holds it is dropped."""


NO_VALUE = _NoValue()
# Properties that name a resource, by type (the name is then its physical name).
_NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::SNS::Topic": "TopicName",
}


def _arn(service: str, d: Deployment, resource: str) -> str:
    return f"arn:aws:{service}:{d.region}:{d.account}:{resource}"


def _table(name: str, d: Deployment) -> dict[str, str]:
    return {"Ref": name, "Arn": _arn("dynamodb", d, f"table/{name}")}


def _bucket(name: str, d: Deployment) -> dict[str, str]:
    return {
        "Ref": name,
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{d.region}.amazonaws.com",
    }


def _queue(name: str, d: Deployment) -> dict[str, str]:
    url = f"https://sqs.{d.region}.amazonaws.com/{d.account}/{name}"
    return {"Ref": url, "QueueUrl": url, "QueueName": name, "Arn": _arn("sqs", d, name)}


def _distribution(name: str, d: Deployment) -> dict[str, str]:
    return {"Ref": name, "Id": name, "DomainName": f"{name.lower()}.cloudfront.net"}


def _log_group(name: str, d: Deployment) -> dict[str, str]:
    return {"Ref": name, "Arn": _arn("logs", d, f"log-group:{name}:*")}


def _secret(name: str, d: Deployment) -> dict[str, str]:
    secret = _arn("secretsmanager", d, f"secret:{name}-{SECRET_SUFFIX}")
    return {"Ref": secret, "Id": secret}


def _parameter(name: str, d: Deployment) -> dict[str, str]:
    return {"Ref": name}


def _role(name: str, d: Deployment) -> dict[str, str]:
    return {"Ref": name, "Arn": f"arn:aws:iam::{d.account}:role/{name}"}


def _managed_policy(name: str, d: Deployment) -> dict[str, str]:
    policy = f"arn:aws:iam::{d.account}:policy/{name}"
    return {"Ref": policy, "PolicyArn": policy}


def _function(name: str, d: Deployment) -> dict[str, str]:
    return {"Ref": name, "Arn": _arn("lambda", d, f"function:{name}")}


def _topic(name: str, d: Deployment) -> dict[str, str]:
    topic = _arn("sns", d, name)
    return {"Ref": topic, "TopicArn": topic, "TopicName": name}


# Ref and Fn::GetAtt values by type, from the resource's physical name.
_ATTRIBUTES: dict[str, Callable[[str, Deployment], dict[str, str]]] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::S3::Bucket": _bucket,
    "AWS::SQS::Queue": _queue,
    "AWS::CloudFront::Distribution": _distribution,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::SSM::Parameter": _parameter,
    "AWS::IAM::Role": _role,
    "AWS::IAM::ManagedPolicy": _managed_policy,
    "AWS::Lambda::Function": _function,
    "AWS::Serverless::Function": _function,
    "AWS::SNS::Topic": _topic,
}


class Resolver:
    """Evaluates CloudFormation's intrinsic functions against a `Deployment`."""

    def __init__(self, template: Mapping[str, Any], deployment: Deployment) -> None:
        self.template = template
        self.deployment = deployment
        d = deployment
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": d.region,
            "AWS::AccountId": d.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": d.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{d.region}:{d.account}:stack/{d.stack_name}/1",
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return NO_VALUE if argument == "AWS::NoValue" else self.ref(argument)
            if key == "Fn::GetAtt":
                name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Join":
                delimiter, parts = argument
                return delimiter.join(str(p) for p in self.resolve(parts))
            if key == "Fn::If":
                condition, if_true, if_false = argument
                chosen = if_true if self.deployment.conditions.get(condition) else if_false
                return self.resolve(chosen)
            if key.startswith("Fn::"):
                raise Unsupported(f"intrinsic function {key}")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} stays ${Literal}
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and name not in self.pseudo:
                logical, attribute = name.split(".", 1)
                return self.get_att(logical, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            value = self.deployment.parameters.get(name, parameters[name].get("Default"))
            if value is None:
                raise Unsupported(f"parameter {name} has no default: give it in the Deployment")
            return str(value)
        return self.attributes(name)["Ref"]

    def get_att(self, name: str, attribute: str) -> str:
        attributes = self.attributes(name)
        if attribute not in attributes:
            raise Unsupported(f"Fn::GetAtt {name}.{attribute}")
        return attributes[attribute]

    def physical_name(self, logical: str) -> str:
        if logical in self.deployment.names:
            return self.deployment.names[logical]
        resource = self.template["Resources"][logical]
        named = _NAME_PROPERTY.get(resource["Type"], "")
        given = resource.get("Properties", {}).get(named)
        return str(self.resolve(given)) if given else f"{self.deployment.stack_name}-{logical}"

    def attributes(self, logical: str) -> dict[str, str]:
        """Ref and Fn::GetAtt values, for the resource types the roles refer to."""
        resources = self.template["Resources"]
        if logical not in resources:
            raise Unsupported(f"Ref to {logical}, which is neither a resource nor a parameter")
        kind = resources[logical]["Type"]
        name = self.physical_name(logical)
        values = _ATTRIBUTES.get(kind)
        if values is None:
            raise Unsupported(f"{logical} ({kind}): no physical values; add its type to Resolver")
        return values(name, self.deployment)


# AWS managed policies a role may attach, reduced to what matters for the recorded calls.
_AWS_MANAGED: dict[str, list[dict[str, Any]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}
_RESOURCE_POLICIES = {
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SecretsManager::ResourcePolicy",
}


def role_of(template: Mapping[str, Any], function: str) -> str:
    """The logical id of the role a function runs as (`Role: !GetAtt X.Arn`)."""
    role = template["Resources"][function].get("Properties", {}).get("Role")
    target = role.get("Fn::GetAtt") if isinstance(role, dict) else None
    if isinstance(target, str):
        target = target.split(".", 1)
    if not (isinstance(target, list) and len(target) == 2 and target[1] == "Arn"):
        raise Unsupported(f"{function}: Role must be Fn::GetAtt [<role>, Arn], not {role!r}")
    return str(target[0])


def _refers_to(value: Any, logical: str) -> bool:
    return isinstance(value, dict) and value == {"Ref": logical}


def _documents(resolver: Resolver, role: str) -> Iterator[tuple[Any, Path]]:
    """What holds each policy document that applies to `role` (under "PolicyDocument"),
    with its path in the template."""
    resources = resolver.template["Resources"]
    properties = resources[role]["Properties"]
    for index, policy in enumerate(properties.get("Policies", [])):
        yield policy, ("Resources", role, "Properties", "Policies", index)
    for index, arn in enumerate(properties.get("ManagedPolicyArns", [])):
        target = arn.get("Ref") if isinstance(arn, dict) else None
        if target in resources and resources[target]["Type"] == "AWS::IAM::ManagedPolicy":
            continue  # yielded below with the policies that name the role
        name = resolver.resolve(arn)
        if name not in _AWS_MANAGED:
            raise Unsupported(f"{role}: managed policy {name!r}")
        yield {"PolicyDocument": {"Statement": _AWS_MANAGED[name]}}, ("AWS managed", name, index)
    for logical, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        attached = kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and any(
            _refers_to(r, role) for r in props.get("Roles", [])
        )
        attached = attached or (
            kind == "AWS::IAM::ManagedPolicy"
            and any(_refers_to(a, logical) for a in properties.get("ManagedPolicyArns", []))
        )
        attached = attached or (
            kind == "AWS::IAM::RolePolicy" and _refers_to(props.get("RoleName"), role)
        )
        if attached:
            yield props, ("Resources", logical, "Properties")


def _denies_everyone(raw: Any) -> bool:
    if not isinstance(raw, dict):
        return False
    return raw.get("Effect") == "Deny" and raw.get("Principal") in ("*", {"AWS": "*"})


def role_policy(template: Mapping[str, Any], function: str, deployment: Deployment) -> Policy:
    """Everything that decides `function`'s requests: its role's statements, and the Deny
    statements of resource policies that apply to every principal."""
    resolver = Resolver(template, deployment)
    statements: list[Statement] = []
    for holder, path in _documents(resolver, role_of(template, function)):
        for raw, where in _statement_list(holder, path):
            resolved = resolver.resolve(raw)
            if resolved is not NO_VALUE:
                statements.append(parse_statement(resolved, where))
    for logical, resource in template["Resources"].items():
        if resource["Type"] not in _RESOURCE_POLICIES:
            continue
        path = ("Resources", logical, "Properties")
        for raw, where in _statement_list(resource["Properties"], path):
            if _denies_everyone(raw):
                resolved = {k: v for k, v in resolver.resolve(raw).items() if k != "Principal"}
                statements.append(parse_statement(resolved, where))
    return Policy(tuple(statements))


def functions(template: Mapping[str, Any]) -> list[str]:
    kinds = ("AWS::Serverless::Function", "AWS::Lambda::Function")
    return sorted(k for k, v in template["Resources"].items() if v["Type"] in kinds)


def without(template: Any, path: Path) -> None:
    """Remove the statement at `path` (from `Statement.path`) in place."""
    *parent_path, last = path
    parent = template
    for key in parent_path:
        parent = parent[key]
    if isinstance(last, int):
        del parent[last]
    else:
        parent[last] = []
