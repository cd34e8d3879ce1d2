"""The ingest API: an HTTP API (API Gateway, JWT authorizer on the Cognito pool) in front of one function.

- ``POST /uploads``: a presigned POST for one file under the caller's own prefix (:mod:`.uploads`).
- ``POST /events/{dataset}``: a batch of JSON records landed once per Idempotency-Key
  (:mod:`.events_batches`).
- ``GET /files``, ``GET /files/{upload_id}``: the caller's files and their outcome, from the manifests
  (:mod:`.files`).

API Gateway has verified the token before the function runs; the caller is read from the verified claims
only (:mod:`.auth`), never from the path or the body.
"""
