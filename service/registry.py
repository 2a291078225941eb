"""Every model of a repository, loaded and verified: `<repository>/<name>/<version>/`, each
with its runner chain (`build_predictor`: session -> batcher -> predictor).

The default model (answering `POST /v1/predict`) is ATTNSERVE_DEFAULT_MODEL, else the name in
the repository's `default_model.txt`, else the repository's only model.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attnserve.service.batching import Batcher
from attnserve.service.errors import (
    ArtifactError,
    ModelNotFound,
    ModelNotReady,
    ModelUnavailable,
    RepositoryError,
    ServiceError,
)
from attnserve.service.inference import Runner, SessionRunner
from attnserve.service.loading import LoadedModel, load_artifact
from attnserve.service.predictor import Limits, Predictor
from attnserve.service.providers import SessionConfig
from attnserve.service.schemas import ModelList, UnavailableModel
from attnserve.service.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "default_model.txt"

# Told the size of each batch a model runs: (model name, texts in the batch).
BatchSizeObserver = Callable[[str, int], None]


class ModelRegistry:
    """The served models by name, the default one, and the models whose artifact is broken."""

    def __init__(
        self,
        predictors: dict[str, Predictor],
        default_model: str,
        unavailable: dict[str, UnavailableModel] | None = None,
    ) -> None:
        self.predictors = predictors
        self.default_model = default_model
        self.unavailable = unavailable or {}

    @classmethod
    def load(
        cls, settings: Settings, observe_batch: BatchSizeObserver | None = None
    ) -> ModelRegistry:
        """Loads the highest version of every model; a broken one is set aside with its reason.

        Raises RepositoryError when the layout is wrong or no model at all can be served.
        """
        layout = scan_repository(settings.model_repository)
        default_model = default_model_name(settings, sorted({*layout.models, *layout.unusable}))
        config = SessionConfig.from_settings(settings)
        predictors = {}
        unavailable = {
            name: UnavailableModel(name=name, version="", reason=reason)
            for name, reason in layout.unusable.items()
        }
        for name, reason in layout.unusable.items():
            logger.error("model_unavailable", extra={"model": name, "reason": reason})
        for name, model_dir in layout.models.items():
            start = time.perf_counter()
            try:
                model = _load(name, model_dir, config)
            except ArtifactError as exc:
                # The client sees the reason without the server's paths; the log has them.
                reason = str(exc).replace(f"{model_dir}: ", "").replace(str(model_dir), ".")
                unavailable[name] = UnavailableModel(
                    name=name, version=model_dir.name, reason=reason
                )
                logger.error(
                    "model_unavailable",
                    extra={"model": name, "directory": str(model_dir), "reason": str(exc)},
                )
                continue
            predictors[name] = build_predictor(model, settings, observe_batch)
            logger.info(
                "model_loaded",
                extra={
                    "model": name,
                    "version": model_dir.name,
                    "provider": predictors[name].model.provider,
                    "load_ms": round((time.perf_counter() - start) * 1000.0, 1),
                },
            )
        if not predictors:
            reasons = "; ".join(f"{name}: {model.reason}" for name, model in unavailable.items())
            raise RepositoryError(f"No usable model in {settings.model_repository}: {reasons}")
        return cls(predictors, default_model, unavailable)

    @property
    def names(self) -> list[str]:
        return sorted(self.predictors)

    def serves(self, name: str) -> bool:
        return name in self.predictors

    def get(self, name: str | None = None) -> Predictor:
        """The named model's predictor; None: the default model's."""
        name = self.default_model if name is None else name
        if name in self.unavailable:
            raise ModelUnavailable(name, self.unavailable[name].reason)
        if name not in self.predictors:
            raise ModelNotFound(name, self.names)
        return self.predictors[name]

    def refusal(self, name: str | None = None) -> ServiceError | None:
        """Why the named model (None: the default) would refuse a request now, before its body
        is read: a full queue. None also for an unknown or unavailable model, whose route
        answers what is wrong."""
        predictor = self.predictors.get(self.default_model if name is None else name)
        return None if predictor is None else predictor.refusal()

    def check_ready(self, policy: str) -> None:
        """Raises ModelNotReady unless ready by `policy`: `all`: every model loaded; `any`: the
        default model loaded (POST /v1/predict answers), whichever others did not."""
        if self.unavailable and (policy == "all" or self.default_model in self.unavailable):
            raise ModelNotReady(sorted(self.unavailable))

    def served(self) -> list[Predictor]:
        """The served models' predictors, by name."""
        return [self.predictors[name] for name in self.names]

    async def close(self) -> None:
        """Stops every model's batcher."""
        for predictor in self.predictors.values():
            await predictor.close()

    def list_models(self) -> ModelList:
        return ModelList(
            default_model=self.default_model,
            models=[predictor.info for predictor in self.served()],
            unavailable=[self.unavailable[name] for name in sorted(self.unavailable)],
        )


def build_predictor(
    model: LoadedModel, settings: Settings, observe_batch: BatchSizeObserver | None = None
) -> Predictor:
    """The model's runner chain, in one place: its session, run in worker threads (batch sizes
    told to `observe_batch`, probabilities calibrated by the manifest's temperature), behind a
    batcher unless batching is off, under a predictor.

    The batch size is the setting's for this model, else the manifest's serving hint, else the
    setting's default."""
    name = model.manifest.name
    observe = None if observe_batch is None else functools.partial(observe_batch, name)
    calibration = model.manifest.calibration
    session = SessionRunner(
        model.session,
        observe,
        temperature=1.0 if calibration is None else calibration.temperature,
        inline_below_ms=settings.inline_below_ms,
    )
    runner: Runner = session
    if settings.batching:
        runner = Batcher(
            session,
            pad_id=model.encoder.pad_id,
            max_batch_size=settings.batch_max_sizes.get(name)
            or model.manifest.serving.max_batch_size
            or settings.batch_max_size,
            max_delay_ms=settings.batch_max_delay_ms,
            max_queue_texts=settings.batch_queue_texts,
            max_wait_s=settings.max_queue_wait_s,
            group_by_length=model.manifest.serving.group_by_length,
            max_concurrent_batches=model.parallelism.batches_at_once,
        )
    limits = Limits(
        max_texts=settings.max_texts_per_request,
        max_chars=settings.max_text_chars,
        max_heads_values=settings.max_heads_values,
    )
    return Predictor(model, runner, limits)


def _load(name: str, model_dir: Path, config: SessionConfig) -> LoadedModel:
    model = load_artifact(model_dir, config)
    if (model.manifest.name, model.manifest.version) != (name, model_dir.name):
        raise ArtifactError(
            f"{model_dir}: manifest says {model.manifest.name}/{model.manifest.version}, "
            f"the directory is {name}/{model_dir.name}"
        )
    return model


# Not model folders: a filesystem's own (every ext4 volume's root has lost+found).
NOT_MODELS = frozenset({"lost+found"})


@dataclass(frozen=True)
class RepositoryLayout:
    """What a repository's entries are: each model's highest version, the model folders that
    hold no usable version (and why)."""

    models: dict[str, Path]
    unusable: dict[str, str]


def find_models(repository: Path) -> dict[str, Path]:
    """Model name -> directory of its highest version (numeric order: 10 after 9)."""
    return scan_repository(repository).models


def scan_repository(repository: Path) -> RepositoryLayout:
    """Each model folder's highest numeric version. Files, dot-folders and a filesystem's own
    folders are not models, and a version folder that is not a number (`1.bak`) is not a
    version: both are skipped with a log line, as Triton does."""
    if not repository.is_dir():
        raise RepositoryError(f"Model repository {repository} does not exist")
    models: dict[str, Path] = {}
    unusable: dict[str, str] = {}
    for entry in sorted(repository.iterdir()):
        if not entry.is_dir() or entry.name.startswith(".") or entry.name in NOT_MODELS:
            if entry.name != DEFAULT_MODEL_FILE:
                logger.info("repository_entry_skipped", extra={"entry": str(entry)})
            continue
        versions: dict[tuple[int, ...], Path] = {}
        skipped = []
        try:
            version_dirs = _subdirectories(entry)
        except OSError as exc:
            unusable[entry.name] = f"cannot read the model folder: {exc.strerror or exc}"
            continue
        for version_dir in version_dirs:
            try:
                versions[tuple(int(part) for part in version_dir.name.split("."))] = version_dir
            except ValueError:
                skipped.append(version_dir.name)
                logger.warning(
                    "version_folder_skipped",
                    extra={
                        "directory": str(version_dir),
                        "reason": "version folders are numbers like 3 or 1.2",
                    },
                )
        if versions:
            models[entry.name] = versions[max(versions)]
        else:
            reason = "no version folders (expected e.g. 1/)"
            if skipped:
                reason += f"; not versions: {', '.join(sorted(skipped))}"
            unusable[entry.name] = reason
    if not models and not unusable:
        raise RepositoryError(
            f"Model repository {repository} holds no models (expected <name>/<version>/)"
        )
    return RepositoryLayout(models, unusable)


def _subdirectories(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if path.is_dir() and not path.name.startswith(".")]


def default_model_name(settings: Settings, names: list[str]) -> str:
    """The model answering `POST /v1/predict` among the repository's `names`."""
    requested = settings.default_model or _declared_default(settings.model_repository)
    return _default_model(requested, names)


def _declared_default(repository: Path) -> str | None:
    """The name in `<repository>/default_model.txt`, if the repository declares one."""
    path = repository / DEFAULT_MODEL_FILE
    if not path.is_file():
        return None
    name = path.read_text("utf-8").strip()
    if not name:
        raise RepositoryError(f"{path} is empty: write the default model's name in it")
    return name


def _default_model(requested: str | None, names: list[str]) -> str:
    if requested is not None:
        if requested not in names:
            raise RepositoryError(
                f"Default model '{requested}' is not in the repository (it has: {', '.join(names)})"
            )
        return requested
    if len(names) > 1:
        raise RepositoryError(
            f"The repository has several models ({', '.join(names)}): "
            "set ATTNSERVE_DEFAULT_MODEL, or write in the repository's "
            f"{DEFAULT_MODEL_FILE}, the one POST /v1/predict should use"
        )
    return names[0]
