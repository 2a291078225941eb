"""The service's configuration: one typed object, read from `ATTNSERVE_*` variables once."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderChoice = Literal["auto", "cpu", "cuda", "tensorrt"]
LogLevel = Literal["debug", "info", "warning", "error"]


class Settings(BaseSettings):
    """Everything the service can be told; build it once and pass it to `create_app`."""

    model_config = SettingsConfigDict(
        env_prefix="ATTNSERVE_", use_attribute_docstrings=True, extra="forbid"
    )

    model_repository: Path = Path("model_repository")
    """Directory of models as `<name>/<version>/`; the highest version of each is served. By
    default `model_repository` in the working directory (a checkout's shipped models)."""

    default_model: str | None = None
    """Model answering `POST /v1/predict`. None: the one named in the repository's
    `default_model.txt`, else the repository's only model."""

    providers: ProviderChoice = "auto"
    """ONNX Runtime execution provider. auto: TensorRT or CUDA when available, else CPU."""

    intra_op_threads: int = Field(default=0, ge=0)
    """Threads ONNX Runtime may use inside one operator; 0 lets ONNX Runtime decide. A model
    that computes a batch per core (`batch_concurrency`) computes this many one-thread batches
    at once instead."""

    inter_op_threads: int = Field(default=0, ge=0)
    """Threads ONNX Runtime may use across independent operators; 0 lets ONNX Runtime decide."""

    intra_op_spinning: bool | None = None
    """Let ONNX Runtime's threads spin a moment for more work before they sleep, for every
    model (true) or none (false); unset: as each model's manifest says (`serving.spinning`:
    the encoder spins, its many small operators wake the threads often; the word models do
    not, their spinning threads took the cores the event loop needed under load)."""

    fuse_skip_layer_norm: bool | None = None
    """Let ONNX Runtime fuse each residual Add and LayerNormalization into one
    SkipLayerNormalization (true) or not (false); unset: on accelerators only. On the CPU its
    kernel is slower than the two operators it replaces (the encoder: the same answers 1.2-1.35x
    as fast without it)."""

    host: str = "127.0.0.1"
    """Interface the HTTP server binds to."""

    port: int = Field(default=8000, ge=1, le=65535)
    """Port the HTTP server listens on."""

    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    """Port of the Open Inference Protocol over gRPC, on `host` beside HTTP; None (or empty,
    to switch off an image's default): no gRPC server. 0 takes any free port (the log's
    `grpc_listening` event names it)."""

    @field_validator("grpc_port", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    log_level: LogLevel = "info"
    """Level of the service's logs."""

    max_texts_per_request: int = Field(default=64, ge=1)
    """Most texts one predict request may carry (413 above)."""

    max_text_chars: int = Field(default=5000, ge=1)
    """Most characters one text may have (413 above); once normalised (Unicode NFKD, which a
    ligature or a Hangul syllable expands), at most four times as many."""

    max_heads_values: int = Field(default=1024 * 1024, ge=1)
    """Most self-attention weights one `detail: heads` request may ask for, over its texts
    (layers x heads x tokens x tokens each; 413 above): about 20 MB of JSON."""

    max_heads_in_flight: int = Field(default=2, ge=1)
    """Most `detail: heads` requests a process computes, encodes and sends at once (503
    `overloaded` with Retry-After above): their answers are megabytes each, and a slow reader
    keeps its answer in the server's memory until it has read it."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    """Largest request body accepted, checked before parsing (413 above)."""

    max_buffered_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    """Most bytes of request bodies held while they arrive, over all requests of a process;
    past it a request is answered 503 `overloaded` (slow uploads cannot pile up memory)."""

    gzip_min_bytes: int = Field(default=1024 * 1024, ge=0)
    """Smallest JSON answer gzipped for a client that accepts it (`Accept-Encoding: gzip`),
    e.g. the self-attention maps of `detail: heads`; smaller ones are sent as they are, as
    the answer is then small next to what compressing and decompressing it cost."""

    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    """Largest request line and headers together (431 above), checked as they arrive."""

    header_timeout_s: float = Field(default=10.0, gt=0)
    """Longest a client may take to send its request line and headers, from when the
    connection opens or its request's first byte arrives (408 past it; then closed)."""

    keep_alive_s: float = Field(default=5.0, gt=0)
    """How long an idle connection is kept open between requests."""

    health_port: int | None = Field(default=None, ge=1, le=65535)
    """A second port for the health routes only (`/healthz`, `/readyz`, `/v2/health/*`),
    outside `max_connections`: point the orchestrator's probes at it, and a flood of
    connections on the main port cannot starve them. Not for public exposure. None: off."""

    max_connections: int = Field(default=2048, ge=1)
    """Most connections open at once per process (lowered to what its descriptors allow);
    past it a new connection's requests are answered 503 `too_many_connections`, but for the
    health routes, so that probes still answer."""

    readiness: Literal["all", "any"] = "all"
    """`/readyz` policy: `all`: ready when every model loaded; `any`: when at least one did."""

    request_timeout_s: float = Field(default=30.0, gt=0)
    """Longest a request may take before it is answered 503 `request_timeout`."""

    shutdown_grace_s: int = Field(default=30, ge=0)
    """On SIGTERM, how long in-flight requests may run on before they are cut."""

    api_keys: SecretStr | None = None
    """Comma-separated API keys; when set (or `api_keys_file`), every route but health needs one."""

    api_keys_file: Path | None = None
    """File of sha256 hex digests of API keys, one a line (`#` comments): keys never on disk."""

    cors_origins: list[str] = []
    """Origins browsers may call from, as a JSON list (`["https://a.example"]`); empty: CORS off."""

    batching: bool = True
    """Merge concurrent requests' texts into shared ONNX Runtime calls (service/batching.py)."""

    batch_max_size: int = Field(default=32, ge=1)
    """Most texts in one batched ONNX Runtime call (a larger request is cut into several), for
    a model whose manifest gives no `serving.max_batch_size`."""

    batch_max_sizes: dict[str, int] = {}
    """Per-model `batch_max_size`, as a JSON object (`{"name": size}`), over the model's own
    serving hint (its manifest's `serving.max_batch_size`: 8 for the pretrained encoder, whose
    larger batches pay more for padding than they save) and over `batch_max_size`."""

    batch_max_delay_ms: float = Field(default=0.0, ge=0.0)
    """Longest a batch waits for more texts once one is queued; 0 takes only what is waiting."""

    batch_concurrency: int | None = Field(default=None, ge=1)
    """Batches of one model that may compute at once (ONNX Runtime runs them side by side);
    while that many compute, the next batch fills. Unset: one, except for a model whose
    manifest hints `serving.batch_per_core` (the encoder), which on the CPU computes one batch
    per core (`intra_op_threads` of them when set), each on one ONNX Runtime thread."""

    inline_below_ms: float = Field(default=1.0, ge=0.0)
    """A /v1 request of one text, alone in flight, computes on the event loop itself (no
    hand-off to a worker thread and back) when its model is idle and computes a lone text in
    under this many milliseconds (as measured); 0: every batch computes in a worker thread."""

    batch_queue_texts: int = Field(default=2048, ge=1)
    """Most texts waiting for inference per model; past it requests get 503 with Retry-After."""

    max_queue_wait_s: float = Field(default=10.0, gt=0)
    """Longest a request may expect to wait in its model's queue: past it (queued texts times
    the model's measured time per text) it is refused 503 with Retry-After, so that what is
    admitted is answered within `request_timeout_s`."""
