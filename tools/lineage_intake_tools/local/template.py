"""Read ``template.yaml``, the one source of truth for infrastructure, for tests and the local stack.

It creates the template's DynamoDB tables, S3 buckets and SQS queues on any endpoint (moto in tests and in
the local stack), and it answers what ``sam local invoke`` would: a function's code folder, handler and
environment, with ``!Ref``/``!GetAtt`` resolved to the local physical names. Nothing here is deployed to AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags into their long form."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class Stack:
    """The template's resources bound to local physical names."""

    template: dict[str, Any]
    prefix: str = "local"
    region: str = "us-east-1"
    account: str = "123456789012"
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_template(cls, prefix: str = "local", parameters: dict[str, str] | None = None) -> Stack:
        return cls(template=load_template(), prefix=prefix, parameters=dict(parameters or {}))

    # ------------------------------------------------------------------ names
    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def of_type(self, cfn_type: str) -> list[str]:
        return [name for name, res in self.resources.items() if res["Type"] == cfn_type]

    def physical_name(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        base = f"{self.prefix}-{logical_id}"
        return base.lower() if kind == "AWS::S3::Bucket" else base

    def parameter(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        spec = self.template["Parameters"][name]
        return str(spec["Default"])

    def queue_url(self, logical_id: str, endpoint: str) -> str:
        return f"{endpoint.rstrip('/')}/{self.account}/{self.physical_name(logical_id)}"

    def resolve(self, value: Any, endpoint: str = "http://localhost") -> Any:
        """Resolve the intrinsics that function environments use: Ref, GetAtt, Sub with ${AWS::...}."""
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg in self.template.get("Parameters", {}):
                    return self.parameter(arg)
                if arg == "AWS::Region":
                    return self.region
                if arg == "AWS::StackName":
                    return self.prefix
                kind = self.resources[arg]["Type"]
                if kind == "AWS::SQS::Queue":
                    return self.queue_url(arg, endpoint)
                return self.physical_name(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg
                if attr == "Arn":
                    return self.arn(logical)
                if attr == "QueueName":
                    return self.physical_name(logical)
                if attr == "StreamArn":
                    return f"{self.arn(logical)}/stream/local"
                return self.physical_name(logical)
            if key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                for token, repl in (("${AWS::StackName}", self.prefix), ("${AWS::Region}", self.region)):
                    text = text.replace(token, repl)
                return text
        return value

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{self.region}:{self.account}:{name}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{name}"
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"

    # ------------------------------------------------------------------ functions
    def function(self, logical_id: str, endpoint: str = "http://localhost") -> FunctionSpec:
        props = self.resources[logical_id]["Properties"]
        glob = self.template.get("Globals", {}).get("Function", {})
        env: dict[str, str] = {}
        for source in (glob.get("Environment", {}), props.get("Environment", {})):
            for key, value in source.get("Variables", {}).items():
                env[key] = str(self.resolve(value, endpoint))
        layers = [
            ROOT / self.resources[layer["Ref"]]["Properties"]["ContentUri"]
            for layer in props.get("Layers", glob.get("Layers", []))
            if isinstance(layer, dict) and "Ref" in layer
        ]
        module, _, attr = props["Handler"].rpartition(".")
        return FunctionSpec(
            logical_id=logical_id,
            code_dir=ROOT / props["CodeUri"],
            module=module,
            handler=attr,
            environment=env,
            layer_dirs=layers,
            timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
            events=props.get("Events", {}),
        )

    def functions(self) -> list[str]:
        return self.of_type("AWS::Serverless::Function")

    def table_env(self) -> dict[str, str]:
        """Table, bucket and queue names keyed by the stack's output names (what the CLI reads)."""
        out: dict[str, str] = {}
        for key, spec in self.template.get("Outputs", {}).items():
            value = spec["Value"]
            if isinstance(value, dict) and "Ref" in value and value["Ref"] in self.resources:
                out[key] = str(self.resolve(value))
        return out

    # ------------------------------------------------------------------ creation
    def create(self, session: Any, endpoint_url: str | None = None) -> None:
        """Create every table, bucket and queue of the template through ``session`` (a boto3 Session)."""
        kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
        ddb = session.client("dynamodb", region_name=self.region, **kwargs)
        for logical in self.of_type("AWS::DynamoDB::Table"):
            ddb.create_table(**self.table_definition(logical))
            ttl = self.resources[logical]["Properties"].get("TimeToLiveSpecification")
            if ttl and self._truthy(ttl.get("Enabled")):
                ddb.update_time_to_live(
                    TableName=self.physical_name(logical),
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
        s3 = session.client("s3", region_name=self.region, **kwargs)
        for logical in self.of_type("AWS::S3::Bucket"):
            s3.create_bucket(Bucket=self.physical_name(logical))
        sqs = session.client("sqs", region_name=self.region, **kwargs)
        for logical in self.of_type("AWS::SQS::Queue"):
            props = self.resources[logical].get("Properties", {})
            attributes = {
                name: str(self.resolve(props[name])) for name in ("DelaySeconds", "VisibilityTimeout") if name in props
            }
            sqs.create_queue(QueueName=self.physical_name(logical), Attributes=attributes)

    def table_definition(self, logical_id: str) -> dict[str, Any]:
        props = self.resources[logical_id]["Properties"]
        definition: dict[str, Any] = {
            "TableName": self.physical_name(logical_id),
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "StreamSpecification" in props:
            definition["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        return definition

    def _truthy(self, value: Any) -> bool:
        if isinstance(value, dict) and "Fn::If" in value:
            condition, yes, no = value["Fn::If"]
            return self._truthy(yes if self.condition(condition) else no)
        return value is True or str(value).lower() == "true"

    def condition(self, name: str) -> bool:
        expr = self.template["Conditions"][name]
        return bool(self._eval(expr))

    def _eval(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            ((key, arg),) = expr.items()
            if key == "Fn::Not":
                return not self._eval(arg[0])
            if key == "Fn::Equals":
                return str(self._eval(arg[0])) == str(self._eval(arg[1]))
            if key == "Ref":
                return self.resolve(expr)
        return expr

    def queue_sources(self, function_logical_id: str) -> list[dict[str, Any]]:
        """The SQS event sources of a function: queue and batch size."""
        out = []
        for event in self.resources[function_logical_id]["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                out.append({"queue_logical_id": queue, "batch_size": int(event["Properties"].get("BatchSize", 10))})
        return out

    def stream_source(self, function_logical_id: str) -> dict[str, Any]:
        """The DynamoDB event source of a function: table, filters, batch size and failure handling."""
        for event in self.resources[function_logical_id]["Properties"].get("Events", {}).values():
            if event["Type"] == "DynamoDB":
                props = event["Properties"]
                table = props["Stream"]["Fn::GetAtt"][0]
                on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                return {
                    "table_logical_id": table,
                    "table": self.physical_name(table),
                    "batch_size": int(props.get("BatchSize", 100)),
                    "max_retries": int(props.get("MaximumRetryAttempts", -1)),
                    "bisect_on_error": bool(props.get("BisectBatchOnFunctionError", False)),
                    "report_item_failures": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    "filters": [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])],
                    "on_failure_queue": on_failure["Fn::GetAtt"][0] if on_failure else None,
                    "batching_window_seconds": float(props.get("MaximumBatchingWindowInSeconds", 0)),
                }
        raise KeyError(f"{function_logical_id} has no DynamoDB event source")

    def http_routes(self) -> list[tuple[str, str, str]]:
        """(method, path, function logical id) for every HttpApi event."""
        routes = []
        for logical in self.functions():
            for event in self.resources[logical]["Properties"].get("Events", {}).values():
                if event["Type"] == "HttpApi":
                    routes.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"], logical))
        return routes

    def unauthorized_routes(self) -> set[tuple[str, str]]:
        """(method, path) of the HttpApi events declared with ``Auth: Authorizer: NONE``."""
        return {
            (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
            for logical in self.functions()
            for event in self.resources[logical]["Properties"].get("Events", {}).values()
            if event["Type"] == "HttpApi" and event["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
        }

    def authorizer(self) -> dict[str, Any]:
        """The HTTP API's default Lambda authorizer: function, identity header and cache TTL."""
        api = next(iter(self.of_type("AWS::Serverless::HttpApi")))
        auth = self.resources[api]["Properties"]["Auth"]
        spec = auth["Authorizers"][auth["DefaultAuthorizer"]]
        identity = spec.get("Identity", {})
        return {
            "function_logical_id": spec["FunctionArn"]["Fn::GetAtt"][0],
            "headers": identity.get("Headers", ["Authorization"]),
            "ttl_seconds": int(self.resolve(identity.get("ReauthorizeEvery", 300))),
            "simple_responses": bool(spec.get("EnableSimpleResponses", False)),
            "payload_format": str(spec.get("AuthorizerPayloadFormatVersion", "2.0")),
        }


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    environment: dict[str, str]
    layer_dirs: list[Path]
    timeout: int
    events: dict[str, Any]
