"""Every model of a repository, loaded and verified: `<repository>/<name>/<version>/`.

The default model (answering `POST /v1/predict`) is ATTNSERVE_DEFAULT_MODEL, else the name in
the repository's `default_model.txt`, else the repository's only model.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from service.artifact import load_artifact
from service.errors import ArtifactError, ModelNotFound, RepositoryError
from service.predictor import Predictor
from service.providers import SessionConfig
from service.schemas import ModelList
from service.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "default_model.txt"


class ModelRegistry:
    """The served models by name, and the default one."""

    def __init__(self, predictors: dict[str, Predictor], default_model: str) -> None:
        self.predictors = predictors
        self.default_model = default_model

    @classmethod
    def load(cls, settings: Settings) -> ModelRegistry:
        """Loads the highest version of every model; any problem is a StartupError."""
        found = find_models(settings.model_repository)
        requested = settings.default_model or _declared_default(settings.model_repository)
        default_model = _default_model(requested, sorted(found))
        config = SessionConfig.from_settings(settings)
        predictors = {}
        for name, model_dir in found.items():
            start = time.perf_counter()
            model = load_artifact(model_dir, config)
            if (model.manifest.name, model.manifest.version) != (name, model_dir.name):
                raise ArtifactError(
                    f"{model_dir}: manifest says {model.manifest.name}/{model.manifest.version}, "
                    f"the directory is {name}/{model_dir.name}"
                )
            predictors[name] = Predictor(model, settings)
            logger.info(
                "model_loaded",
                extra={
                    "model": name,
                    "version": model.manifest.version,
                    "provider": model.provider,
                    "load_ms": round((time.perf_counter() - start) * 1000.0, 1),
                },
            )
        return cls(predictors, default_model)

    @property
    def names(self) -> list[str]:
        return sorted(self.predictors)

    def get(self, name: str | None = None) -> Predictor:
        """The named model's predictor; None: the default model's."""
        name = self.default_model if name is None else name
        if name not in self.predictors:
            raise ModelNotFound(name, self.names)
        return self.predictors[name]

    async def close(self) -> None:
        """Stops every model's batcher."""
        for predictor in self.predictors.values():
            await predictor.close()

    def list_models(self) -> ModelList:
        return ModelList(
            default_model=self.default_model,
            models=[self.predictors[name].info for name in self.names],
        )


def find_models(repository: Path) -> dict[str, Path]:
    """Model name -> directory of its highest version (numeric order: 10 after 9)."""
    if not repository.is_dir():
        raise RepositoryError(f"Model repository {repository} does not exist")
    models = {}
    for model_root in sorted(_subdirectories(repository)):
        versions = {}
        for version_dir in _subdirectories(model_root):
            try:
                versions[tuple(int(part) for part in version_dir.name.split("."))] = version_dir
            except ValueError:
                raise RepositoryError(
                    f"{version_dir}: version directories must be numbers like 3 or 1.2"
                ) from None
        if not versions:
            raise RepositoryError(f"{model_root}: no version directories (expected e.g. 1/)")
        models[model_root.name] = versions[max(versions)]
    if not models:
        raise RepositoryError(
            f"Model repository {repository} holds no models (expected <name>/<version>/)"
        )
    return models


def _subdirectories(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if path.is_dir() and not path.name.startswith(".")]


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
