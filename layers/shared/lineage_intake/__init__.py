"""lineage-intake: the shared domain package of the OpenLineage backend.

One home per concept:
- ``models`` / ``facets``: OpenLineage event models (strict core, open facets);
- ``keys``: DynamoDB key encoding;
- ``body``: HTTP body decoding (base64, gzip, caps);
- ``events_store``: the Events table and body bucket repository;
- ``ingest``: the ingest use case;
- ``principal``: the authorizer context shared by the authorizer and ingest;
- ``config``: environment configuration checked at cold start;
- ``errors``: domain exceptions.
"""

__version__ = "0.1.0"
