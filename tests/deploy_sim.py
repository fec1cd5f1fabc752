"""What CloudFormation does with the deployable template, done locally: the SAM transform, the
dependency graph (CloudFormation refuses a cycle: cfn-lint's E3004), and the reduction of the
transformed template to what moto's CloudFormation can create.

Used by tests/test_deploy.py; plain functions on template dicts (as json.load or cfn-lint's
loader give them), no AWS calls."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

REGION = "us-east-1"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
# Sections of a resource that are not resource references, whatever their content.
_NOT_REFERENCES = ("Type", "Condition", "DependsOn", "DeletionPolicy", "UpdateReplacePolicy")
# `${Name}` or `${Name.Attr}` in an Fn::Sub string; `${!Literal}` is not a reference.
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")
# Types dropped before moto deploys, whatever moto's model list says: CloudFront is not in
# moto's CloudFormation at all, and moto's AWS::ApiGateway::RestApi needs a Name and ignores
# Body, so the API the SAM transform generates (a RestApi from an OpenAPI body, its Deployment
# and Stage) cannot be created from it; what hangs off that API goes with it.
_ALWAYS_DROPPED_PREFIXES = ("AWS::CloudFront::", "AWS::ApiGateway::")
PLACEHOLDER = "dropped-for-moto"


def load_template(path: Path) -> dict[str, Any]:
    """A template file (YAML with short-form intrinsics, or JSON) as plain dicts and lists."""
    loaded = cfn_yaml.load(str(path))
    plain: dict[str, Any] = json.loads(json.dumps(loaded))
    return plain


# -- the SAM transform ---------------------------------------------------------------------------


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """The template after CloudFormation's AWS::Serverless-2016-10-31 transform, in us-east-1.

    Every function's CodeUri must already be an s3:// URI or a {Bucket, Key} object (what
    `aws cloudformation package` writes); a local path is an error, as it would be in AWS.
    The input is not modified."""
    sam = copy.deepcopy(template)
    for name, resource in sam.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            code = resource.get("Properties", {}).get("CodeUri")
            if isinstance(code, str) and not code.startswith("s3://"):
                raise ValueError(f"{name}: CodeUri {code!r} is not in S3: package it first")
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.Session(region_name=REGION),
    )
    # The functions name their roles, so no managed policy is looked up (it would need IAM).
    transformed: dict[str, Any] = translator.translate(
        sam, parameter_values={}, get_managed_policy_map=dict
    )
    transformed = json.loads(json.dumps(transformed))
    transformed.pop("Transform", None)
    return transformed


# -- the dependency graph ------------------------------------------------------------------------


def _references(value: Any, resources: set[str]) -> Iterator[str]:
    """Logical ids of the resources that `value` refers to, through any nesting of intrinsics.
    Parameters, pseudo parameters (AWS::...), and condition names are not resources."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item, resources)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        ((key, argument),) = value.items()
        intrinsic = _INTRINSIC_REFERENCES.get(key)
        if intrinsic is not None:
            yield from intrinsic(argument, resources)
            return
    for item in value.values():
        yield from _references(item, resources)


def _ref_references(argument: Any, resources: set[str]) -> Iterator[str]:
    if isinstance(argument, str) and argument in resources:
        yield argument


def _get_att_references(argument: Any, resources: set[str]) -> Iterator[str]:
    """`Res.Attr` or [Res, attribute], the attribute name possibly an intrinsic."""
    target = argument.split(".", 1)[0] if isinstance(argument, str) else None
    if isinstance(argument, list) and argument and isinstance(argument[0], str):
        target = argument[0]
        yield from _references(argument[1:], resources)  # an intrinsic attribute name
    if target in resources:
        yield target


def _sub_references(argument: Any, resources: set[str]) -> Iterator[str]:
    """A string, or [string, variables]: the variables' values, and every `${Res}` or
    `${Res.Attr}` in the string that is not one of the variables."""
    text: Any = argument if isinstance(argument, str) else None
    variables: Any = {}
    if isinstance(argument, list) and argument:
        text = argument[0]
        variables = argument[1] if len(argument) > 1 else {}
    if isinstance(variables, dict):
        yield from _references(list(variables.values()), resources)
    else:
        yield from _references(variables, resources)
    if not isinstance(text, str):
        yield from _references(text, resources)
        return
    for name in _SUB_VARIABLE.findall(text):
        target = name.strip().split(".", 1)[0]
        if target in resources and not (isinstance(variables, dict) and name.strip() in variables):
            yield target


def _if_references(argument: Any, resources: set[str]) -> Iterator[str]:
    if isinstance(argument, list):
        # [condition name, value if true, value if false]: both branches count.
        argument = argument[1:]
    yield from _references(argument, resources)


# The intrinsics whose arguments are not simply values to search: each one's references.
_INTRINSIC_REFERENCES: dict[str, Callable[[Any, set[str]], Iterator[str]]] = {
    "Ref": _ref_references,
    "Fn::GetAtt": _get_att_references,
    "Fn::Sub": _sub_references,
    "Fn::If": _if_references,
}


def dependency_graph(template: dict[str, Any]) -> dict[str, set[str]]:
    """Each resource's logical id -> the resources it depends on (CloudFormation's order of
    creation): Ref, Fn::GetAtt, Fn::Sub (${Res}, ${Res.Attr}, and its variables), DependsOn,
    anywhere in the resource (Properties, Metadata, policies), both branches of every Fn::If."""
    resources: dict[str, Any] = template.get("Resources", {})
    names = set(resources)
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        edges: set[str] = set()
        depends = resource.get("DependsOn", [])
        for target in [depends] if isinstance(depends, str) else depends:
            if target in names:
                edges.add(target)
        body = {k: v for k, v in resource.items() if k not in _NOT_REFERENCES}
        edges |= set(_references(body, names))
        graph[name] = edges
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a template may be deeper than Python's recursion)."""
    search = _Tarjan(graph)
    for root in sorted(graph):
        if root not in search.index:
            search.visit_from(root)
    return search.components


class _Tarjan:
    """The state of Tarjan's algorithm on `graph`; `components` grows as it completes
    them, each found from the alphabetically first node not yet visited."""

    def __init__(self, graph: dict[str, set[str]]) -> None:
        self.graph = graph
        self.index: dict[str, int] = {}  # nodes in the order visited
        self.low: dict[str, int] = {}
        self.on_stack: set[str] = set()
        self.stack: list[str] = []
        self.components: list[list[str]] = []
        # The depth-first path: each node with its successors not yet looked at.
        self.work: list[tuple[str, Iterator[str]]] = []

    def visit_from(self, root: str) -> None:
        """Every node reachable from `root` and not visited yet, depth first."""
        self._enter(root)
        while self.work:
            node, successors = self.work[-1]
            if self._descend(node, successors):
                continue
            self.work.pop()
            if self.work:
                parent = self.work[-1][0]
                self.low[parent] = min(self.low[parent], self.low[node])
            if self.low[node] == self.index[node]:
                self._pop_component(node)

    def _enter(self, node: str) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        self.work.append((node, iter(sorted(self.graph[node]))))

    def _descend(self, node: str, successors: Iterator[str]) -> bool:
        """Enter `node`'s next unvisited successor (True), noting the ones on the stack on
        the way; False once none is left."""
        for successor in successors:
            if successor not in self.index:
                self._enter(successor)
                return True
            if successor in self.on_stack:
                self.low[node] = min(self.low[node], self.index[successor])
        return False

    def _pop_component(self, node: str) -> None:
        """`node` is the root of a component: the stack down to it."""
        component: list[str] = []
        while True:
            member = self.stack.pop()
            self.on_stack.discard(member)
            component.append(member)
            if member == node:
                break
        self.components.append(component)


def _shortest_cycle(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside `within`, without repeating start."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in sorted(graph[node] & within):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return path[::-1]
                if successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"{start} is on no cycle")  # pragma: no cover: Tarjan said it is


def dependency_cycles(template: dict[str, Any]) -> list[list[str]]:
    """Every circular dependency between the template's resources, one list per strongly
    connected component that has a cycle (a resource depending on itself included).

    Each list names every resource of its component; it starts with a cycle through the
    alphabetically first of them, in dependency order (each depends on the next, the last on
    the first), followed by the component's other resources, sorted. An empty list: no cycle."""
    graph = dependency_graph(template)
    cycles: list[list[str]] = []
    for component in _strongly_connected(graph):
        members = set(component)
        first = min(members)
        if len(members) == 1 and first not in graph[first]:
            continue
        cycle = _shortest_cycle(graph, first, members)
        cycles.append(cycle + sorted(members - set(cycle)))
    return sorted(cycles)


# -- what moto can deploy ------------------------------------------------------------------------


def moto_resource_types() -> set[str]:
    """The resource types moto's CloudFormation creates; it skips any other with a warning
    ("not supported by moto's CloudFormation implementation"), then fails on references to it."""
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


def _replace_references(value: Any, dropped: set[str]) -> Any:
    """`value` with every reference to a dropped resource replaced by a placeholder string."""
    if isinstance(value, list):
        return [_replace_references(item, dropped) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        replaced = _replace_intrinsic(key, argument, dropped)
        if replaced is not None:
            return replaced
    return {k: _replace_references(v, dropped) for k, v in value.items()}


def _replace_intrinsic(key: str, argument: Any, dropped: set[str]) -> Any:
    """What the intrinsic `{key: argument}` becomes, or None if it is left to be searched
    like any other value."""
    if key == "Ref" and argument in dropped:
        return f"{PLACEHOLDER}-{argument}"
    if key == "Fn::GetAtt":
        parts = argument.split(".", 1) if isinstance(argument, str) else argument
        if isinstance(parts, list) and parts and parts[0] in dropped:
            return f"{PLACEHOLDER}-{'.'.join(str(p) for p in parts)}"
    if key == "Fn::Sub":
        return _replace_in_sub(argument, dropped)
    return None


def _replace_in_sub(argument: Any, dropped: set[str]) -> dict[str, Any] | None:
    """An Fn::Sub whose `${Res}` and `${Res.Attr}` naming a dropped resource are replaced
    (a variable of the same name is not a resource), and its variables' values too; None
    if it is neither a string nor [string, variables]."""
    if isinstance(argument, str):
        return {"Fn::Sub": _substitute_dropped(argument, dropped)}
    if not (isinstance(argument, list) and argument and isinstance(argument[0], str)):
        return None
    variables = argument[1] if len(argument) > 1 else {}
    if isinstance(variables, dict):
        text = _SUB_VARIABLE.sub(
            lambda m: (
                m.group(0)
                if m.group(1).strip() in variables
                else _substitute_dropped(m.group(0), dropped)
            ),
            argument[0],
        )
    else:
        text = _substitute_dropped(argument[0], dropped)
    return {"Fn::Sub": [text, _replace_references(variables, dropped)]}


def _substitute_dropped(text: str, dropped: set[str]) -> str:
    """An Fn::Sub string with each `${Res}` or `${Res.Attr}` of a dropped resource replaced."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.split(".", 1)[0] in dropped:
            return f"{PLACEHOLDER}-{name}"
        return match.group(0)

    return _SUB_VARIABLE.sub(one, text)


def for_moto(template: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The transformed template without the resources moto's CloudFormation cannot create,
    and those resources as "LogicalId (Type)", sorted.

    A reference to a dropped resource (Ref, Fn::GetAtt, Fn::Sub) becomes a placeholder string
    (`dropped-for-moto-<Name>[.<Attr>]`), and it is removed from every DependsOn, so outputs,
    policies and variables that mention it still deploy. The input is not modified."""
    if SAM_TRANSFORM in json.dumps(template.get("Transform", [])):
        raise ValueError("apply sam_transform first: moto has no AWS::Serverless transform")
    supported = moto_resource_types()
    resources: dict[str, Any] = template.get("Resources", {})
    dropped = {
        name: resource["Type"]
        for name, resource in resources.items()
        if resource["Type"].startswith(_ALWAYS_DROPPED_PREFIXES)
        or resource["Type"] not in supported
    }
    kept: dict[str, Any] = {}
    for name, resource in resources.items():
        if name in dropped:
            continue
        resource = copy.deepcopy(resource)
        depends = resource.get("DependsOn")
        if depends is not None:
            listed = [depends] if isinstance(depends, str) else depends
            remaining = [d for d in listed if d not in dropped]
            if remaining:
                resource["DependsOn"] = remaining
            else:
                del resource["DependsOn"]
        kept[name] = _replace_references(resource, set(dropped))
    reduced = {k: copy.deepcopy(v) for k, v in template.items() if k != "Resources"}
    reduced["Resources"] = kept
    if "Outputs" in reduced:
        reduced["Outputs"] = _replace_references(reduced["Outputs"], set(dropped))
    return reduced, sorted(f"{name} ({kind})" for name, kind in dropped.items())
