"""Who answers `attnserve predict`: one model loaded here (`LocalScorer`), or a running server
through the Python client (`RemoteScorer`). Both take a list of texts and give the /v1 answer
(the service's schema, or the client's, whose fields are the same: a file's thousands of
answers are not converted from one to the other), and both refuse single texts (empty, too
long) the same way, so that a file's scoring can set those texts aside and go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, TypeVar

from attnserve.cli.errors import CommandError, TextsRefused, require_repository
from attnserve.service.errors import ServiceError, StartupError
from attnserve.service.loading import load_artifact
from attnserve.service.providers import SessionConfig
from attnserve.service.registry import build_predictor, default_model_name, scan_repository
from attnserve.service.schemas import PredictResponse
from attnserve.service.settings import Settings
from attnserve.service.v1_json import predict_response_json

if TYPE_CHECKING:
    from attnserve.service.predictor import Predictor
    from attnserve_client import Client
    from attnserve_client import PredictResponse as ClientResponse

Detail = Literal["heads", "pieces"]
Answer: TypeAlias = "PredictResponse | ClientResponse"
REMOTE_TIMEOUT_S = 60.0
# Texts per call to a server: the client cuts a call to the server's own limit when that is
# lower; this only sets how finely progress is shown and work is spread over connections.
REMOTE_CALL_TEXTS = 64
T = TypeVar("T")


class Scorer(Protocol):
    """Texts in, the /v1 answer out; raises TextsRefused, or CommandError for anything else."""

    model: str
    labels: list[str]
    max_texts: int  # most texts worth sending in one call
    parallel_safe: bool  # calls may come from several threads at once

    def score(self, texts: list[str], detail: Detail | None = None) -> Answer: ...

    def close(self) -> None: ...


class LocalScorer:
    """One model of a repository, loaded in this process (the others are not loaded)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.model = predictor.manifest.name
        self.labels = predictor.manifest.labels
        self.max_texts = predictor.limits.max_texts
        self.parallel_safe = False
        # one loop for every call: the batcher's worker lives on it
        self._loop = asyncio.Runner()

    @classmethod
    def load(cls, repository: Path | None, model: str | None) -> LocalScorer:
        """The named model (None: the repository's default) of `repository` (None: settings')."""
        settings = Settings() if repository is None else Settings(model_repository=repository)
        require_repository(settings.model_repository)
        try:
            layout = scan_repository(settings.model_repository)
            names = sorted({*layout.models, *layout.unusable})
            name = model or default_model_name(settings, names)
            if name in layout.unusable:
                raise CommandError(f"model {name!r} cannot be served: {layout.unusable[name]}")
            if name not in layout.models:
                known = ", ".join(names)
                raise CommandError(f"no model named {name!r} in {repository}; it has: {known}")
            loaded = load_artifact(layout.models[name], SessionConfig.from_settings(settings))
        except StartupError as error:
            raise CommandError(str(error)) from error
        return cls(build_predictor(loaded, settings))

    def score(self, texts: list[str], detail: Detail | None = None) -> PredictResponse:
        try:
            predictions = self._loop.run(self.predictor.predict(texts, detail))
        except ServiceError as error:
            raise refusal(error.code, error.message, error.details) from error
        return PredictResponse.model_validate_json(predict_response_json(predictions))

    def close(self) -> None:
        self._loop.run(self.predictor.close())
        self._loop.close()


class RemoteScorer:
    """A running server, through the Python client (`pip install ./client`)."""

    def __init__(self, client: Client, url: str, model: str, labels: list[str]) -> None:
        self.client = client
        self.url = url
        self.model = model
        self.labels = labels
        self.max_texts = REMOTE_CALL_TEXTS
        self.parallel_safe = True  # httpx's client is

    @classmethod
    def connect(cls, url: str, model: str | None) -> RemoteScorer:
        """Asks the server what it serves, and which labels the model answers with."""
        try:
            from attnserve_client import Client
        except ImportError:
            raise CommandError(
                "--url needs the Python client attnserve-client: pip install ./client"
            ) from None
        client = Client(url, timeout=REMOTE_TIMEOUT_S)
        try:
            served = _remote_call(url, client.models)
            name = model or served.default_model
            labels = {info.name: info.labels for info in served.models}
            if name not in labels:
                known = ", ".join(sorted(labels))
                raise CommandError(f"{url} serves no model named {name!r}; it serves: {known}")
        except CommandError:
            client.close()
            raise
        return cls(client, url, name, labels[name])

    def score(self, texts: list[str], detail: Detail | None = None) -> Answer:
        return _remote_call(
            self.url, lambda: self.client.predict_response(texts, model=self.model, detail=detail)
        )

    def close(self) -> None:
        self.client.close()


def _remote_call(url: str, call: Callable[[], T]) -> T:
    from attnserve_client import APIError, TransportError

    try:
        return call()
    except APIError as error:
        message = f"{url} answered {error.status}: {error.message}"
        raise refusal(error.code, message, error.details) from error
    except TransportError as error:
        raise CommandError(f"cannot reach {url}: {error}") from error


def refusal(code: str, message: str, details: dict[str, Any] | None) -> Exception:
    """TextsRefused for an error about single texts, CommandError (with `message`) otherwise."""
    if code == "empty_text" and details is not None:
        return TextsRefused(code, message, list(details["indices"]))
    if code == "text_too_long" and details is not None:
        return TextsRefused(code, message, [details["index"]])
    return CommandError(message)
