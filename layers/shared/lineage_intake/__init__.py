"""lineage-intake's runtime package: only what the Lambda functions run (the tools live in lineage_intake_tools).

- domain, pure: ``models`` and ``facets`` (events and the well-known facets), ``lineage`` and ``merge`` (the merge's
  records and rules), ``keys``, ``body``, ``principal``, ``tokens``, ``errors``, ``config``;
- ``store``: ``dynamo`` (the one DynamoDB toolkit), then one module per table: ``events``, ``lineage``, ``auth``;
- ``service``: the use cases, one per file: ``ingest``, ``merge``, ``authorizer``, ``admin``.

The architecture and its decisions: README.md and docs/.
"""

__version__ = "0.1.0"
