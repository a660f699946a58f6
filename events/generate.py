"""Regenerate the API Gateway requests in events/ from the fixture corpus (run: python events/generate.py).

Each file is an HTTP API payload-2.0 event exactly as API Gateway hands it to the ingest function after the
authorizer allowed the request: ``requestContext.authorizer.lambda`` holds the authorizer's context. The
files are committed; the tests and `sam local invoke` read them as they are.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

HERE = Path(__file__).parent
CORPUS = HERE.parent / "tests" / "fixtures" / "corpus"
FLUENTD = CORPUS / "openlineage" / "events" / "proxy-fluentd"


def http_event(
    body: bytes, path: str = "/api/v1/lineage", gzipped: bool = False, header: bool = True, connections=None
) -> dict:
    headers = {
        "content-type": "application/json",
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "user-agent": "openlineage-python/1.54.0",
        "content-length": str(len(body)),
    }
    if gzipped and header:
        headers["content-encoding"] = "gzip"
    binary = gzipped
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "authorizer": {
                "lambda": {
                    "tokenId": "tok_sample",
                    "connections": json.dumps(connections or ["my-namespace", "default"]),
                }
            },
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "openlineage-python/1.54.0",
            },
            "requestId": "req-" + path.rsplit("/", 1)[-1],
            "routeKey": f"POST {path}",
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795219200000,
        },
        "body": base64.b64encode(body).decode() if binary else body.decode("utf-8"),
        "isBase64Encoded": binary,
    }


def read_event(path: str, query: str = "", scopes: list | None = None) -> dict:
    """A GET of the read API as API Gateway hands it to the read function: no body, the authorizer's context
    with the read scope (the ``GET /api/v1/{proxy+}`` route)."""
    event = http_event(b"", path=path)
    del event["headers"]["content-type"]
    event["headers"]["content-length"] = "0"
    event["headers"]["user-agent"] = event["requestContext"]["http"]["userAgent"] = "python-requests/2.34.2"
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /api/v1/{proxy+}"
    event["requestContext"]["http"]["method"] = "GET"
    event["requestContext"]["authorizer"]["lambda"]["scopes"] = json.dumps(scopes or ["read", "write"])
    event["rawQueryString"] = query
    event["body"] = None
    return event


def write(name: str, event: dict) -> None:
    (HERE / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    start = (FLUENTD / "docker" / "test-start.json").read_bytes()
    complete = (FLUENTD / "docker" / "test-complete.json").read_bytes()
    write("ingest-start.json", http_event(start))
    write("ingest-complete.json", http_event(complete))
    write("ingest-gzip.json", http_event(gzip.compress(complete, mtime=0), gzipped=True))
    write("ingest-gzip-no-header.json", http_event(gzip.compress(start, mtime=0), gzipped=True, header=False))
    batch = json.dumps([json.loads(start), json.loads(complete)]).encode()
    write("ingest-batch.json", http_event(batch, path="/api/v1/lineage/batch"))
    write("ingest-invalid.json", http_event((FLUENTD / "event_no_run_id.json").read_bytes()))
    write("ingest-forbidden.json", http_event(start, connections=["another-connection"]))
    write("api-namespaces.json", read_event("/api/v1/namespaces", "limit=10"))
    write("api-lineage-unknown-node.json", read_event("/api/v1/lineage", "nodeId=job%3Amy-namespace%3Amy-job&depth=2"))
    write("api-write-only-token.json", read_event("/api/v1/namespaces", scopes=["write"]))


if __name__ == "__main__":
    main()
