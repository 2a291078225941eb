"""The Open Inference Protocol (KServe v2 / Triton HTTP) over the same predictors as /v1.

    GET  /v2                                   server metadata
    GET  /v2/health/live, /v2/health/ready     liveness, readiness
    GET  /v2/models/{name}[/versions/{v}]      model metadata: the tensors of `signature.py`
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer  a BYTES input of texts in, tensors out

Requests and responses may carry tensors as JSON or in the binary tensor data extension
(`binary.py`); every non-200 answer of a /v2 route is `{"error": "<message>"}`.
"""
