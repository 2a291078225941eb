"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), beside HTTP.

    ServerLive, ServerReady              liveness, readiness (no API key needed)
    ServerMetadata, ModelMetadata        the same metadata as GET /v2, /v2/models/{name}
    ModelReady                           the model is loaded and verified
    ModelInfer                           a BYTES input of texts in, tensors out (raw contents)

`attnserve serve` runs it in the HTTP server's process and event loop when ATTNSERVE_GRPC_PORT
(or --grpc-port) is set: the same predictors, admission, limits, API keys, deadline, metrics
and drain. `attnserve_oip.proto` holds the messages; `attnserve_oip_pb2.py` is generated from
it (`make grpc-stubs`).
"""
