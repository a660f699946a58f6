"""``make run``: the whole pipeline of ``template.yaml`` on one machine, without Docker or an AWS account.

``python -m lineage_intake_tools.local.stack [--port 3000] [--auth-cache-ttl S] [--parameter NAME=VALUE]
[--env-file PATH] [--concurrency N] [--log-level LEVEL] [--dynamodb-via-moto-server]``

What runs, all bound to 127.0.0.1:

- **An AWS stand-in**: moto's server (``ThreadedMotoServer``) on a free port, serving S3 and SQS (and
  everything else), and ``lineage_intake_tools.local.dynamodb_endpoint`` on another, serving DynamoDB and
  DynamoDB Streams from moto's own handlers and state without moto's per-request HTTP and Flask work (most of
  the stack's requests; ``--dynamodb-via-moto-server`` sends them to moto's server instead). Every table (with
  its stream), bucket and queue is created from ``template.yaml`` through ``lineage_intake_tools.local.template``;
  nothing is declared twice. State lives in memory: every start is fresh, and nothing persists across restarts.
- **The functions**, each in its own worker process like a Lambda execution environment: the handler is
  imported as the Lambda runtime (and ``sam local invoke``) would, with the function's code folder and the
  layers on ``sys.path`` and the environment the template declares (``!Ref`` resolved to the local names),
  plus ``AWS_ENDPOINT_URL`` (``AWS_ENDPOINT_URL_DYNAMODB`` and ``AWS_ENDPOINT_URL_DYNAMODB_STREAMS`` for the
  DynamoDB endpoint) and fake credentials. A worker runs one invocation at a time, a function has
  ``--concurrency`` workers (4; all started before the ready signal, replaced on demand), an invocation past the
  function's ``Timeout`` kills the worker ("Task timed out") and a crashed worker is replaced. Separate
  processes keep each function's module state, environment and Powertools metrics apart, as in AWS.
- **The HTTP API** on ``--port`` (``lineage_intake_tools.local.front``): routes, the Lambda authorizer with the
  template's cache TTL, payload 2.0 events.
- **The stream poller** (``lineage_intake_tools.local.poller``): the Events table stream to the merge function,
  with the template's filter, batch size, batching window, parallelization factor (distinct runs merged
  concurrently, up to ``--concurrency``; one run's records in order), partial-failure, bisect, retry and DLQ
  settings.

On start it creates the connection ``default``, a write token for it and a read+write token, writes
``.local/openlineage.env`` (one ``KEY=VALUE`` per line: ``OPENLINEAGE_URL``, ``OPENLINEAGE_API_KEY``,
``LINEAGE_READ_TOKEN`` (the read+write token, for the read API), ``OPENLINEAGE_NAMESPACE``,
``AWS_ENDPOINT_URL`` and the two DynamoDB endpoint variables, credentials, region and the ``LINEAGE_*`` names
that the CLI reads), prints the same lines and a ``ready`` line. Logs are Powertools JSON lines on stdout, as in
CloudWatch. Ctrl-C (or SIGTERM) stops everything within 5 s and removes the env file.

Process-wide tweaks keep the one process that hosts moto, the front and the pollers responsive: moto's
per-request listings of its own package and of a response class's methods are cached, its response serializer
takes shortcuts for plain dicts and one-string attribute values (same answers: ``_shortcut_moto_serializer``),
and the GIL switch interval is 1 ms instead of 5 ms. One correctness tweak: moto's DynamoDB backend runs under one lock
(``moto_lock``), because its transactions are not safe under concurrency.

``LocalStack`` is the same thing as a class (``start()``/``stop()``, or ``with LocalStack(port=0) as s:``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from lineage_intake_tools.envfile import endpoint_url, endpoint_variable
from lineage_intake_tools.local import logfiles, moto_lock
from lineage_intake_tools.local.dynamodb_endpoint import DynamoDBEndpoint
from lineage_intake_tools.local.front import AuthorizerConfig, FunctionError, Gateway, HttpFront, Route
from lineage_intake_tools.local.poller import StreamPoller, StreamSourceConfig
from lineage_intake_tools.local.queue_poller import QueuePoller
from lineage_intake_tools.local.template import ROOT, FunctionSpec, Stack

DEFAULT_ENV_FILE = ROOT / ".local" / "openlineage.env"
DEFAULT_PORT = 3000
REGION = "us-east-1"
SWITCH_INTERVAL = 0.001
#: A stop's budget (SIGINT/SIGTERM must end everything within 5 s): requests in flight get ``STOP_GRACE``, a
#: merge in flight is not waited for (the local state is in memory and gone anyway), and whatever overruns
#: ``STOP_DEADLINE`` is killed.
STOP_GRACE = 1.5
STOP_DEADLINE = 4.0
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_DYNAMODB_SERVICES = ("dynamodb", "dynamodbstreams")
#: Variables of the user's shell that must not leak into a function (they would point it elsewhere).
_SCRUBBED_PREFIXES = ("AWS_", "POWERTOOLS_", "LINEAGE_", "OPENLINEAGE_", "_X_AMZN", "_HANDLER", "LAMBDA_")


class StackError(RuntimeError):
    """The local stack cannot start (port in use, template problem, ...). The message says what to do."""


# ---------------------------------------------------------------------------- logging
class JsonLog:
    """The stack's own log lines: Powertools JSON on stdout, like the functions' lines."""

    def __init__(self, level: str = "INFO", stream: Any = None) -> None:
        from aws_lambda_powertools import Logger

        self._logger = Logger(service="local-stack", level=level, logger_handler=_handler(stream))

    def __call__(self, level: str, message: str, fields: dict[str, Any]) -> None:
        method = {"DEBUG": self._logger.debug, "WARNING": self._logger.warning, "ERROR": self._logger.error}
        method.get(level, self._logger.info)(message, extra=fields, stacklevel=3)


def _handler(stream: Any) -> logging.Handler:
    return logging.StreamHandler(stream if stream is not None else sys.stdout)


# ---------------------------------------------------------------------------- functions
@dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context`` (the attributes Powertools reads)."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to become one function's execution environment (picklable)."""

    logical_id: str
    function_name: str
    function_arn: str
    code_dir: str
    module: str
    handler: str
    layer_dirs: tuple[str, ...]
    environment: dict[str, str]
    timeout: int
    memory_mb: int
    #: Where the worker also writes its stdout (``.local/logs/<LogGroup>.log``); empty: nowhere.
    log_file: str = ""


def endpoint_variables(endpoint: str, dynamodb_endpoint: str = "") -> dict[str, str]:
    """botocore's endpoint variables: everything at ``endpoint`` (moto's server), DynamoDB and DynamoDB Streams
    (``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL_DYNAMODB_STREAMS``) at ``dynamodb_endpoint`` when given."""
    variables = {"AWS_ENDPOINT_URL": endpoint}
    if dynamodb_endpoint:
        for service in _DYNAMODB_SERVICES:
            variables[endpoint_variable(service)] = dynamodb_endpoint
    return variables


def function_environment(
    spec: FunctionSpec, name: str, memory_mb: int, endpoint: str, dynamodb_endpoint: str = ""
) -> dict[str, str]:
    """The process environment of a function: the user's basics (PATH, HOME, ...) without anything that
    would point it at a real account, the Lambda runtime variables, fake credentials and the local endpoints,
    then the variables that the template declares for the function."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(
        {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **endpoint_variables(endpoint, dynamodb_endpoint),
            **FAKE_CREDENTIALS,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_SAM_LOCAL": "true",
            "_HANDLER": f"{spec.module}.{spec.handler}",
            # No X-Ray daemon here: Powertools Tracer is a no-op, as under `sam local`.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(spec.environment)
    return env


def _worker_entry(fd: int) -> None:
    """A function's execution environment (run in a fresh interpreter by ``_Container``): read the
    ``WorkerSpec``, import the handler once (the cold start), then serve invocations until the stack closes
    the connection. The environment (``os.environ``) was set up by the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stack decides when its functions stop
    conn = Connection(fd)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    spec = WorkerSpec(**json.loads(conn.recv_bytes()))
    if spec.log_file:  # before the handler's import: Powertools' Logger binds sys.stdout when created
        from lineage_intake_tools.local.logfiles import LineAppender, Tee

        sys.stdout = Tee(sys.stdout, LineAppender(Path(spec.log_file)))
    for folder in reversed([spec.code_dir, *spec.layer_dirs]):
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    try:
        import importlib

        handler = getattr(importlib.import_module(spec.module), spec.handler)
        _send(conn, {"status": "ready"})
    except BaseException as exc:  # an import error is the function's Init error
        _send(conn, {"status": "init_error", "error": _error_payload(exc)})
        return
    while True:
        try:
            message = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            _exit_worker()
        request_id = message["requestId"]
        context = LambdaContext(
            function_name=spec.function_name,
            memory_limit_in_mb=spec.memory_mb,
            invoked_function_arn=spec.function_arn,
            aws_request_id=request_id,
            deadline=message["deadline"],
            log_group_name=f"/aws/lambda/{spec.function_name}",
            log_stream_name=f"local/[$LATEST]{uuid.uuid4().hex}",
        )
        try:
            result = handler(json.loads(message["event"]), context)
            answer: dict[str, Any] = {"status": "ok", "result": json.dumps(result)}
        except Exception as exc:
            error = _error_payload(exc)
            # The Lambda runtime logs an uncaught exception as one JSON line.
            print(json.dumps({**error, "requestId": request_id}), flush=True)
            answer = {"status": "error", "error": error}
        try:
            _send(conn, answer)
        except (EOFError, OSError):
            _exit_worker()


def _exit_worker() -> None:
    """The stack closed the connection: flush the log lines and exit at once. The interpreter's teardown of
    boto3, pydantic and Powertools took about 0.4 s per worker, which a stop of 5 functions cannot afford."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


def _send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(message).encode("utf-8"))


def _error_payload(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


class _Container:
    """One worker process of one function: a fresh interpreter with the function's environment, talking to
    the stack over a socket pair (length-prefixed JSON messages)."""

    def __init__(self, spec: WorkerSpec, output: Any = None) -> None:
        self.spec = spec
        parent, child = socket.socketpair()
        bootstrap = (
            f"import sys; sys.path[:0] = {list(spec.layer_dirs)!r}; "
            f"from lineage_intake_tools.local.stack import _worker_entry; _worker_entry({child.fileno()})"
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", bootstrap],
                env=spec.environment,
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,  # Ctrl-C goes to the stack, which stops its workers itself
            )
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        _send(self.conn, dataclasses.asdict(spec))

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            self.close()
            raise FunctionError(f"{self.spec.logical_id}: the handler did not load within {timeout:.0f} s")
        try:
            answer = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            self.close()
            raise FunctionError(f"{self.spec.logical_id}: the runtime exited during init") from None
        if answer["status"] != "ready":
            self.close()
            error = answer["error"]
            raise FunctionError(f"{self.spec.logical_id}: init failed: {error['errorType']}: {error['errorMessage']}")

    def invoke(self, payload: str, request_id: str, timeout: float) -> dict[str, Any]:
        _send(self.conn, {"requestId": request_id, "event": payload, "deadline": time.time() + timeout})
        if not self.conn.poll(timeout):
            raise TimeoutError
        answer: dict[str, Any] = json.loads(self.conn.recv_bytes())
        return answer

    def close(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()  # the worker sees EOF and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class LocalFunction:
    """A function of the template: invoked with a JSON event, answered with the handler's JSON result.

    Containers (worker processes) are created on demand up to ``concurrency`` and reused. Raises
    ``FunctionError`` when the handler raised, timed out or its process died, as Lambda reports them.
    """

    def __init__(
        self, spec: WorkerSpec, log: Any, concurrency: int = 1, init_timeout: float = 60.0, output: Any = None
    ) -> None:
        self.spec = spec
        self.log = log
        self.concurrency = max(1, concurrency)
        self.init_timeout = init_timeout
        self.output = output
        self._idle: queue.SimpleQueue[_Container] = queue.SimpleQueue()
        self._all: list[_Container] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._closed = False

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    def warm(self, count: int = 1) -> None:
        """Start ``count`` containers at once and wait for their cold starts, so that the first ``count``
        concurrent requests find a warm worker, as on a deployment that has been serving for a while."""
        containers = [self._spawn() for _ in range(count)]
        failures = []
        for container in containers:
            try:
                self._ready(container)
                self._idle.put(container)
            except FunctionError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    def _spawn(self) -> _Container:
        with self._lock:
            if self._closed:
                raise FunctionError(f"{self.logical_id}: the stack is stopping")
            container = _Container(self.spec, self.output)
            self._all.append(container)
            return container

    def _ready(self, container: _Container) -> None:
        try:
            container.wait_ready(self.init_timeout)
        except FunctionError:
            self._forget(container)
            raise

    def _forget(self, container: _Container) -> None:
        with self._lock:
            if container in self._all:
                self._all.remove(container)
        container.close(timeout=0.5)

    def invoke(self, event: Mapping[str, Any]) -> Any:
        payload = json.dumps(event)
        request_id = str(uuid.uuid4())
        with self._slots:
            try:
                container = self._idle.get_nowait()
            except queue.Empty:
                container = self._spawn()
                self._ready(container)
            try:
                answer = container.invoke(payload, request_id, float(self.spec.timeout))
            except TimeoutError:
                self.log(
                    "ERROR",
                    f"Task timed out after {self.spec.timeout:.2f} seconds",
                    {"function": self.logical_id, "requestId": request_id},
                )
                self._forget(container)
                raise FunctionError(f"{self.logical_id}: Task timed out after {self.spec.timeout} seconds") from None
            except (EOFError, OSError, BrokenPipeError):
                self._forget(container)
                raise FunctionError(f"{self.logical_id}: Runtime exited without providing a reason") from None
            self._idle.put(container)
        if answer["status"] == "error":
            error = answer["error"]
            raise FunctionError(f"{self.logical_id}: {error['errorType']}: {error['errorMessage']}")
        return json.loads(answer["result"])

    def detach(self) -> list[_Container]:
        """Refuse new invocations and send EOF to every container; the caller waits for them
        (``close_containers``), so that a stack stops all its functions' workers in one shared wait. The
        containers stay listed, so that ``kill`` still reaches them if that wait overruns the stop's budget."""
        with self._lock:
            self._closed = True
            containers = list(self._all)
        for container in containers:
            with contextlib.suppress(OSError):
                container.conn.close()
        return containers

    def kill(self) -> None:
        """SIGKILL every container now (the last resort of a stop that overran its time)."""
        with self._lock:
            containers = list(self._all)
        for container in containers:
            with contextlib.suppress(OSError):
                container.process.kill()


def close_containers(containers: list[_Container], timeout: float) -> None:
    """Wait for containers that were sent EOF, within one shared deadline; SIGKILL what is left."""
    deadline = time.monotonic() + timeout
    for container in containers:
        container.close(timeout=max(0.0, deadline - time.monotonic()))


# ---------------------------------------------------------------------------- the stack
def _cache_moto_module_list() -> None:
    """moto's server lists its package directory (``listdir`` plus an ``isdir`` per entry, about 1 ms) on every
    request to find the backend for a host. The list cannot change while the process runs, so it is computed
    once. Every request of the stack (ingest, merge, CLI, benchmarks) gets faster; nothing else changes."""
    with contextlib.suppress(Exception):
        from moto import backends

        if getattr(backends.list_of_moto_modules, "_lineage_intake_cached", False):
            return
        modules = frozenset(backends.list_of_moto_modules())

        def cached() -> frozenset[str]:
            return modules

        cached._lineage_intake_cached = True  # type: ignore[attr-defined]
        backends.list_of_moto_modules = cached


def _cache_moto_method_names() -> None:
    """moto lists a response class's methods (``inspect.getmembers``) on every request to find the action's
    handler: 2-3 % of the stack's CPU under load (py-spy, docs/merge.md "Throughput"). The classes do not change
    while the process runs, so each list is computed once."""
    with contextlib.suppress(Exception):
        from moto.core import responses

        if getattr(responses.method_names_from_class, "_lineage_intake_cached", False):
            return
        original = responses.method_names_from_class
        names: dict[object, list[str]] = {}

        def cached(clazz: object) -> list[str]:
            if clazz not in names:
                names[clazz] = original(clazz)
            return names[clazz]

        cached._lineage_intake_cached = True  # type: ignore[attr-defined]
        responses.method_names_from_class = cached


_ALIAS_CACHE_SIZE = 20_000


def _shortcut_moto_serializer() -> None:
    """moto's response serializer asks, for every member of every structure it writes (each attribute value of each
    item: ten members per value), which keys of the Python object may hold it, by making its alias providers anew:
    the largest part of the stack's CPU once DynamoDB skips moto's server (py-spy, docs/merge.md "Throughput").
    For a plain dict the answer depends only on the picker, the shape and the key (no provider reads anything else
    of a dict but its class), so it is computed once for each; every other object takes moto's own path."""
    with contextlib.suppress(Exception):
        from moto.core import serialize

        for picker in (serialize.AttributePicker, serialize.XFormedAttributePicker):
            original = vars(picker)["get_possible_keys"]
            if getattr(original, "_lineage_intake_cached", False):
                continue
            keys: dict[tuple[Any, ...], list[str]] = {}

            def cached(self: Any, context: Any, _original: Any = original, _keys: dict[Any, Any] = keys) -> Any:
                if type(context.obj) is not dict:
                    return _original(self, context)
                # The shapes themselves (identity-hashed, kept alive) rather than ids that a collected shape frees.
                shape = context.shape
                key = (type(self), tuple(self.alias_providers), shape, getattr(shape, "parent", None), context.key)
                found = _keys.get(key)
                if found is None:
                    if len(_keys) >= _ALIAS_CACHE_SIZE:  # moto's models are cached, so this stays small; bounded anyway
                        _keys.clear()
                    found = _keys[key] = list(_original(self, context))
                return iter(found)

            cached._lineage_intake_cached = True  # type: ignore[attr-defined]
            cached.__wrapped__ = original  # type: ignore[attr-defined]  # for the test that compares the two
            picker.get_possible_keys = cached  # type: ignore[method-assign]
        # And the look-up itself: moto's ``get_value`` tries ``obj[key]`` and catches the KeyError of every member
        # a value does not have (nine of an AttributeValue's ten); for a dict and a plain key, ``dict.get`` answers
        # the same without raising.
        original_get = serialize.get_value
        if not getattr(original_get, "_lineage_intake_cached", False):

            def get_value(obj: Any, key: Any, default: Any = serialize.MISSING, _original: Any = original_get) -> Any:
                if type(obj) is dict and type(key) is str and "." not in key:
                    return obj.get(key, default)
                return _original(obj, key, default)

            get_value._lineage_intake_cached = True  # type: ignore[attr-defined]
            get_value.__wrapped__ = original_get  # type: ignore[attr-defined]
            serialize.get_value = get_value
        # And the commonest value of all, an AttributeValue that is one string or number: moto walks its ten
        # members to copy one; this writes what that walk writes ({"S": "..."} under the serialized name).
        json_serializer = serialize.BaseJSONSerializer
        original_structure = vars(json_serializer)["_serialize_type_structure"]
        if not getattr(original_structure, "_lineage_intake_cached", False):

            def structure(
                self: Any, serialized: Any, value: Any, shape: Any, key: str, _original: Any = original_structure
            ) -> None:
                if key and shape.name == "AttributeValue" and type(value) is dict and len(value) == 1:
                    ((member, text),) = value.items()
                    if (
                        member in ("S", "N")
                        and type(text) is str
                        and not getattr(self._value_picker, "response_transformers", None)
                    ):
                        name = self.get_serialized_name(shape.members[member], member)
                        serialized[self.get_serialized_name(shape, key)] = {name: text}
                        return
                _original(self, serialized, value, shape, key)

            structure._lineage_intake_cached = True  # type: ignore[attr-defined]
            structure.__wrapped__ = original_structure  # type: ignore[attr-defined]
            json_serializer._serialize_type_structure = structure  # type: ignore[method-assign]


@dataclass
class LocalStack:
    """The local pipeline. ``port=0`` picks a free port; ``env_file=None`` writes no env file."""

    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    parameters: dict[str, str] = field(default_factory=dict)
    auth_cache_ttl: int | None = None
    env_file: Path | None = DEFAULT_ENV_FILE
    namespace: str = "default"
    prefix: str = "local"
    concurrency: int = 4
    log_level: str = "INFO"
    log_stream: Any = None
    #: Where the functions' processes write their logs (a file object or ``subprocess.DEVNULL``); default stdout.
    function_output: Any = None
    #: ``.local/logs/``: one file per log group (functions and access log). Default: ``logs/`` next to the env
    #: file; None with no env file. See ``lineage_intake_tools.local.logfiles``.
    logs_dir: Path | None = None
    #: Serve DynamoDB and DynamoDB Streams from ``dynamodb_endpoint`` (moto's handlers without werkzeug and
    #: Flask); False: from moto's server like everything else (the load bench's comparison).
    lean: bool = True

    def __post_init__(self) -> None:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise StackError("the local stack binds to the loopback interface only")
        self.log = JsonLog(self.log_level, self.log_stream)
        self.template = Stack.from_template(prefix=self.prefix, parameters=self.parameters)
        self.moto: Any = None
        self.endpoint_url = ""
        self.dynamodb: DynamoDBEndpoint | None = None
        #: Where DynamoDB and DynamoDB Streams are served (the lean endpoint); empty: at ``endpoint_url`` too.
        self.dynamodb_url = ""
        self.functions: dict[str, LocalFunction] = {}
        self.front: HttpFront | None = None
        self.pollers: list[StreamPoller] = []
        self.queue_pollers: list[QueuePoller] = []
        self.api_key = ""
        self.token_id = ""
        self.read_token = ""
        self.env: dict[str, str] = {}
        self._written_env: str | None = None
        self._clients: list[Any] = []
        self._access_log: Any = None
        if self.logs_dir is None and self.env_file is not None:
            self.logs_dir = self.env_file.parent / "logs"
        self._started = False
        self._switch_interval: float | None = None

    # -------------------------------------------------------------- context manager
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self.front is None:
            raise RuntimeError("the stack is not started")
        return self.front.url

    # -------------------------------------------------------------- start
    def start(self) -> LocalStack:
        if self._started:
            raise RuntimeError("the stack is already started")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        started = time.monotonic()
        # One process serves the HTTP front, moto and the pollers from many threads. With CPython's default
        # 5 ms GIL switch interval, a thread woken by I/O (a reply from a function, a request to moto) can wait
        # that long behind a busy one at every hop; 1 ms keeps the hops short. (Process-wide; restored on stop.)
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        self._check_parameters()
        self._open_logs()
        self._bind_front()
        if self.env_file is not None and self.env_file.exists():
            self.env_file.unlink()  # a left-over of a stack that did not stop cleanly
        self._start_moto()
        if self.lean:
            self.dynamodb = DynamoDBEndpoint(self.host).start()
            self.dynamodb_url = self.dynamodb.url
        session = self._session()
        self.template.create(session, self.endpoint_url)
        self._load_functions()
        self._create_token(session)
        self._start_pollers(session)
        assert self.front is not None
        self.front.start()
        self.env = self._env_values()
        if self.env_file is not None:
            self._write_env_file(self.env_file)
        self.log(
            "INFO",
            "local stack ready",
            {
                "url": self.url,
                "awsEndpoint": self.endpoint_url,
                "dynamodbEndpoint": self.dynamodb_url or self.endpoint_url,
                "envFile": str(self.env_file) if self.env_file else None,
                "startupSeconds": round(time.monotonic() - started, 2),
            },
        )

    def _check_parameters(self) -> None:
        spec = self.template.template.get("Parameters", {})
        if self.auth_cache_ttl is not None:
            if self.auth_cache_ttl < 0:
                raise StackError("--auth-cache-ttl cannot be negative")
            self.template.parameters["AuthorizerCacheTtlSeconds"] = str(self.auth_cache_ttl)
        for name, value in self.template.parameters.items():
            if name not in spec:
                raise StackError(f"template.yaml has no parameter {name!r}; it has {', '.join(sorted(spec))}")
            allowed = [str(v) for v in spec[name].get("AllowedValues", [])]
            if allowed and value not in allowed:
                self.log(
                    "WARNING",
                    "parameter value not allowed by the template (accepted locally only)",
                    {"parameter": name, "value": value, "allowed": allowed},
                )

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines from the stand-in
        _cache_moto_module_list()
        _cache_moto_method_names()
        _shortcut_moto_serializer()
        moto_lock.serialise_dynamodb()  # moto's transactions are not safe under concurrency
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        # moto keeps its state per process: a stack started again in the same process starts empty.
        import http.client

        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request("POST", "/moto-api/reset")
            connection.getresponse().read()
        finally:
            connection.close()

    def _session(self) -> Any:
        import boto3

        return boto3.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def client(self, service: str) -> Any:
        """A boto3 client of the local AWS stand-in."""
        from botocore.config import Config

        client = self._session().client(
            service,
            endpoint_url=endpoint_url(endpoint_variables(self.endpoint_url, self.dynamodb_url), service),
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )
        self._clients.append(client)
        return client

    def _load_functions(self) -> None:
        specs = []
        for logical in self.template.functions():
            spec = self.template.function(logical, self.endpoint_url)
            name = self.template.physical_name(logical)
            props = self.template.resources[logical]["Properties"]
            glob = self.template.template.get("Globals", {}).get("Function", {})
            memory = int(props.get("MemorySize", glob.get("MemorySize", 128)))
            specs.append(
                WorkerSpec(
                    logical_id=logical,
                    function_name=name,
                    function_arn=self.template.arn(logical),
                    code_dir=str(spec.code_dir),
                    module=spec.module,
                    handler=spec.handler,
                    layer_dirs=tuple(str(d) for d in spec.layer_dirs),
                    environment=function_environment(spec, name, memory, self.endpoint_url, self.dynamodb_url),
                    timeout=spec.timeout,
                    memory_mb=memory,
                    log_file=self._log_file(self._function_groups.get(logical)),
                )
            )
        for worker in specs:
            self.functions[worker.logical_id] = LocalFunction(
                worker, self.log, self.concurrency, output=self.function_output
            )
        # Every worker of every function, in parallel, before the env file (the ready signal) is written: each
        # is a fresh interpreter importing boto3, Powertools and pydantic (about 6 s on a busy machine), more than
        # the Python client's 5 s timeout, so a lazily started worker would make its first requests retry.
        errors: list[BaseException] = []

        def warm(function: LocalFunction) -> None:
            try:
                function.warm(function.concurrency)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=warm, args=(f,)) for f in self.functions.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise StackError(f"a function failed to load: {errors[0]}")

    def _create_token(self, session: Any) -> None:
        from lineage_intake.service.admin import Admin
        from lineage_intake.store.auth import ConnectionStore, TokenStore

        ddb = self.client("dynamodb")
        admin = Admin(
            connections=ConnectionStore(ddb, self.template.physical_name("ConnectionsTable")),
            tokens=TokenStore(ddb, self.template.physical_name("TokensTable")),
        )
        admin.create_connection(self.namespace, description="created by the local stack")
        issued = admin.create_token([self.namespace], name="local stack")
        self.api_key = issued.token
        self.token_id = issued.record.token_id
        reader = admin.create_token([self.namespace], name="local stack (read+write)", scopes=["read", "write"])
        self.read_token = reader.token

    def _start_pollers(self, session: Any) -> None:
        for logical in self.template.functions():
            for source in self.template.queue_sources(logical):
                queue_poller = QueuePoller(
                    self.client("sqs"),
                    self.template.queue_url(source["queue_logical_id"], self.endpoint_url),
                    self.template.arn(source["queue_logical_id"]),
                    REGION,
                    source["batch_size"],
                    self.functions[logical].invoke,
                    self.log,
                )
                queue_poller.start()
                self.queue_pollers.append(queue_poller)
            events = self.template.resources[logical]["Properties"].get("Events", {})
            if not any(e["Type"] == "DynamoDB" for e in events.values()):
                continue
            function = self.functions[logical]
            poller = StreamPoller(
                StreamSourceConfig.from_stack(self.template, logical, self.endpoint_url),
                invoke=function.invoke,
                dynamodb=self.client("dynamodb"),
                streams=self.client("dynamodbstreams"),
                sqs=self.client("sqs"),
                log=self.log,
                forget_iterator=self._forget_iterator,
                max_concurrency=function.concurrency,
            )
            poller.start()
            self.pollers.append(poller)

    def _forget_iterator(self, iterator: str) -> None:
        """moto keeps every shard iterator it ever handed out; a poller asks four times a second, so a stack
        left running would grow without bound. Used iterators are dropped from the in-process backend."""
        with contextlib.suppress(Exception):
            from moto.dynamodbstreams.models import dynamodbstreams_backends

            dynamodbstreams_backends[self.template.account][REGION].shard_iterators.pop(iterator, None)

    def _bind_front(self) -> None:
        """Take the port first: a busy port fails the start at once, before anything else is started."""
        public = self.template.unauthorized_routes()
        routes = [
            Route(method, path, logical, authorized=(method, path) not in public)
            for method, path, logical in self.template.http_routes()
        ]
        authorizer = AuthorizerConfig.from_template(self.template.authorizer())

        def invoke(logical_id: str, event: dict[str, Any]) -> Any:
            return self.functions[logical_id].invoke(event)

        gateway = Gateway(routes, authorizer, invoke, self.log, region=REGION, account=self.template.account)
        if self._access_log is not None:
            gateway.access_format = logfiles.access_log_format(self.template.template) or ""
            gateway.access_log = self._access_log.write_line
        front = HttpFront(gateway, self.host, self.port, self.log)
        try:
            front.bind()
        except OSError as exc:
            raise StackError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}. Is another `make run` still running? "
                "Stop it, or pick another port: make run PORT=3001"
            ) from exc
        self.front = front

    # -------------------------------------------------------------- log files
    @property
    def _function_groups(self) -> dict[str, str]:
        return logfiles.function_log_groups(self.template.template)

    def _log_file(self, group: str | None) -> str:
        return str(self.logs_dir / logfiles.file_name(group)) if self.logs_dir is not None and group else ""

    def _open_logs(self) -> None:
        """Empty ``.local/logs/`` (the stack starts fresh) and open the access log."""
        if self.logs_dir is None:
            return
        access = logfiles.access_log_group(self.template.template)
        groups = [*self._function_groups.values(), *([access] if access else [])]
        logfiles.reset(self.logs_dir, [logfiles.file_name(g) for g in groups])
        if access:
            self._access_log = logfiles.LineAppender(self.logs_dir / logfiles.file_name(access))

    # -------------------------------------------------------------- env file
    def _env_values(self) -> dict[str, str]:
        from lineage_intake_tools.cli import RESOURCES

        outputs = self.template.table_env()
        values = {
            "OPENLINEAGE_URL": self.url,
            "OPENLINEAGE_API_KEY": self.api_key,
            "LINEAGE_READ_TOKEN": self.read_token,
            "OPENLINEAGE_NAMESPACE": self.namespace,
            **endpoint_variables(self.endpoint_url, self.dynamodb_url),
            **FAKE_CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
        for output, variable in RESOURCES.values():
            values[variable] = outputs[output]
        values["LINEAGE_MERGE_DLQ_URL"] = self.template.queue_url("MergeDeadLetterQueue", self.endpoint_url)
        if self.logs_dir is not None:
            values["LINEAGE_LOGS_DIR"] = str(self.logs_dir)
        return values

    def env_lines(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.env.items()]

    def _write_env_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(self.env_lines()) + "\n"
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.chmod(temporary, 0o600)  # it holds an API key
        os.replace(temporary, path)  # readers see the whole file or none
        self._written_env = text

    # -------------------------------------------------------------- helpers for tests and tools
    def wait_for_merges(self, timeout: float = 10.0) -> bool:
        """Wait until the stream pollers have handed every record written so far to their functions."""
        deadline = time.monotonic() + timeout
        return all(p.wait_idle(max(0.0, deadline - time.monotonic())) for p in self.pollers)

    # -------------------------------------------------------------- stop
    def stop(self) -> None:
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        # Everything is told to stop first and waited for afterwards, so that the waits overlap: a queue
        # poller's long poll (1 s) and the workers' exits would otherwise add up past the 5 s budget.
        pollers: list[StreamPoller | QueuePoller] = [*self.pollers, *self.queue_pollers]
        self.pollers, self.queue_pollers = [], []
        for poller in pollers:
            poller.request_stop()
        if self.front is not None:
            self.front.stop(grace_seconds=STOP_GRACE)
            self.front = None
        # A merge in flight is not waited for: the local state is in memory and gone with the stack.
        containers = [c for function in self.functions.values() for c in function.detach()]
        close_containers(containers, timeout=2.0)
        self.functions = {}
        for poller in pollers:
            poller.stop(timeout=0.5)
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients = []
        if self._access_log is not None:
            with contextlib.suppress(OSError):
                self._access_log.close()
            self._access_log = None
        if self.dynamodb is not None:
            self.dynamodb.stop()
            self.dynamodb = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self.env_file is not None and self._written_env is not None:
            with contextlib.suppress(OSError):
                if self.env_file.read_text(encoding="utf-8") == self._written_env:
                    self.env_file.unlink()
            self._written_env = None


# ---------------------------------------------------------------------------- command line
def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lineage_intake_tools.local.stack",
        description="Serve the lineage-intake pipeline of template.yaml locally (no Docker, no AWS account).",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)), help="0: any free")
    parser.add_argument(
        "--auth-cache-ttl",
        type=int,
        metavar="SECONDS",
        help="override the template's AuthorizerCacheTtlSeconds (how long a decision, e.g. for a revoked token, "
        "is cached)",
    )
    parser.add_argument(
        "--parameter", action="append", type=_parameter, default=[], metavar="NAME=VALUE", help="template parameter"
    )
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE, help="where to write the client settings")
    parser.add_argument("--namespace", default="default", help="the connection created on start")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="at most this many worker processes per function (default 4)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--dynamodb-via-moto-server",
        action="store_true",
        help="serve DynamoDB through moto's server too, not the lean endpoint (slower; for comparisons)",
    )
    return parser


def _banner(stack: LocalStack) -> str:
    env_file = stack.env_file
    shown = env_file.relative_to(Path.cwd()) if env_file and env_file.is_relative_to(Path.cwd()) else env_file
    lines = [
        "",
        "# lineage-intake local stack. Client settings (also in the env file):",
        *stack.env_lines(),
        "",
    ]
    if shown is not None:
        lines.append(f"# Use them in a shell:  set -a; . {shown}; set +a")
    lines.append(f"# ready: POST OpenLineage events to {stack.url}/api/v1/lineage (Ctrl-C stops)")
    return "\n".join(lines) + "\n"


def command(env_file: Path, *args: str) -> list[str]:
    """``make run`` on a free port, writing its settings to ``env_file`` (how tests and benchmarks start it)."""
    return [sys.executable, "-m", "lineage_intake_tools.local.stack", "--port", "0", "--env-file", str(env_file), *args]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            os._exit(130)  # a second Ctrl-C: do not wait for the clean stop
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(
        port=args.port,
        parameters=dict(args.parameter),
        auth_cache_ttl=args.auth_cache_ttl,
        env_file=args.env_file.resolve(),
        namespace=args.namespace,
        concurrency=args.concurrency,
        log_level=args.log_level,
        lean=not args.dynamodb_via_moto_server,
    )
    try:
        stack.start()
    except StackError as exc:
        print(f"lineage-intake local stack: {exc}", file=sys.stderr)
        return 1
    try:
        sys.stdout.write(_banner(stack))
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
        stack.log("INFO", "stopping the local stack", {})
        watchdog = threading.Timer(STOP_DEADLINE, _overran, args=(stack,))
        watchdog.daemon = True
        watchdog.start()
    finally:
        stack.stop()
    stack.log("INFO", "local stack stopped", {})
    return 0


def _overran(stack: LocalStack) -> None:
    """The stop took longer than its budget: kill the workers (they run in their own sessions, so nothing else
    would), drop the env file, and exit."""
    stack.log("ERROR", "the stop overran its time: killing what is left", {"seconds": STOP_DEADLINE})
    for function in list(stack.functions.values()):
        function.kill()
    if stack.env_file is not None:
        with contextlib.suppress(OSError):
            stack.env_file.unlink()
    sys.stdout.flush()
    os._exit(1)


if __name__ == "__main__":
    code = main()
    # Everything is stopped. Skip the interpreter's teardown, which would join whatever non-daemon thread a
    # library left (moto's server, executors) and kept the process alive 15 to 35 s after "stopped".
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
