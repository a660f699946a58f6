"""Validate a JSON answer against a response schema of Marquez's OpenAPI document (tests/fixtures/marquez).

OpenAPI 3.0 schemas are almost JSON Schema; the differences handled here:

- ``nullable: true`` becomes ``type: [T, "null"]`` (jsonschema does not know ``nullable``);
- ``$ref: '#/components/schemas/X'`` resolves inside the document (a ``referencing`` registry);
- ``allOf``/``anyOf``/``oneOf`` are JSON Schema already, except a ``oneOf`` under a ``discriminator`` whose
  property is a *sibling* (GraphNode's ``data`` is chosen by the node's ``type``): jsonschema ignores
  discriminators, and Dataset and Job overlap (no required fields, open objects), so every node would match
  both branches. It becomes ``if type == KEY then data: mapping[KEY]`` for each mapping entry;
- an empty ``type:`` (YAML null, in SearchResult) means no type constraint;
- formats (``date-time``, ``uuid``, ``uri``) are checked.

``SPEC_PATCHES`` fixes the few places where the document contradicts what Marquez itself serves; each entry
says why. Everything else is validated as written.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "marquez" / "openapi.yml"
_BASE = "urn:marquez-openapi"

#: (component, JSON path inside it, replacement, reason). Applied before validation.
SPEC_PATCHES: tuple[tuple[str, tuple[str, ...], Any, str], ...] = (
    (
        "NodeType",
        ("enum",),
        ["JOB", "DATASET", "DATASET_FIELD"],
        "Marquez's NodeType.java has DATASET_FIELD: the node type of every /column-lineage node",
    ),
    (
        "DatasetVersion",
        ("properties", "tags"),
        {"type": "array", "items": {"type": "string"}},
        "DatasetVersion.java serialises tags as a set of names, as Dataset does; the document says string",
    ),
    (
        "FacetsResult",
        ("properties", "facets"),
        {"$ref": "#/components/schemas/RunFacets"},
        "facets is a map of facet name to facet (FacetsResult.java), not one facet",
    ),
)


def _patched_spec() -> dict[str, Any]:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    for component, path, replacement, _reason in SPEC_PATCHES:
        target = schemas[component]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(replacement)
    return spec


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12 (see the module docstring)."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items() if key not in ("example", "discriminator")}
    if out.get("nullable") is True and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    out.pop("nullable", None)
    if "type" in out and out["type"] is None:  # `type:` left empty in the YAML (SearchResult.name): no constraint
        del out["type"]
    if "$ref" in out and isinstance(out["$ref"], str) and out["$ref"].startswith("#/"):
        out["$ref"] = _BASE + out["$ref"]
    properties = out.get("properties")
    if isinstance(properties, dict):
        conditions = []
        for prop, raw in (node.get("properties") or {}).items():
            disc = raw.get("discriminator") if isinstance(raw, dict) else None
            if not disc or disc.get("propertyName") not in properties:
                continue
            # The discriminator names a sibling property: choose the branch by it, drop the overlapping oneOf.
            sibling = disc["propertyName"]
            branch = dict(properties[prop])
            branch.pop("oneOf", None)
            properties[prop] = branch
            for key, ref in disc.get("mapping", {}).items():
                conditions.append(
                    {
                        "if": {"properties": {sibling: {"const": key}}, "required": [sibling]},
                        "then": {"properties": {prop: {"$ref": _BASE + ref}}},
                    }
                )
        if conditions:
            out["allOf"] = [*out.get("allOf", []), *conditions]
    return out


@cache
def _document() -> dict[str, Any]:
    return _convert(_patched_spec())


@cache
def _registry() -> Registry:
    return Registry().with_resource(_BASE, Resource.from_contents(_document(), default_specification=DRAFT202012))


def component_schema(name: str) -> dict[str, Any]:
    """The converted schema of ``#/components/schemas/<name>``."""
    return {"$ref": f"{_BASE}#/components/schemas/{name}"}


def response_schema(path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    """The converted response schema of a path of the document (``/namespaces/{namespace}``, no ``/api/v1``)."""
    operation = _document()["paths"][path][method.lower()]
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema if isinstance(schema, dict) else {}


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=_registry(), format_checker=FormatChecker())


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every violation as ``path: message`` (empty when valid), so a failing test says where."""
    errors = sorted(validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def assert_valid_response(instance: Any, path: str, method: str = "get", status: str = "200") -> None:
    errors = schema_errors(instance, response_schema(path, method, status))
    assert not errors, f"{method.upper()} {path} answer does not match Marquez's schema:\n" + "\n".join(errors)


def assert_valid_component(instance: Any, name: str) -> None:
    errors = schema_errors(instance, component_schema(name))
    assert not errors, f"not a valid Marquez {name}:\n" + "\n".join(errors)
