"""A repository of models: the highest version of each, and an unambiguous default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from attnserve.service.errors import ModelNotFound, RepositoryError
from attnserve.service.registry import ModelRegistry
from tests.conftest import cpu_settings


def _place(shipped_model_dir: Path, repository: Path, name: str, version: str) -> None:
    """The shipped model under another name and version (the manifest is not hashed)."""
    target = repository / name / version
    shutil.copytree(shipped_model_dir, target)
    manifest_path = target / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) | {"name": name, "version": version}
    manifest_path.write_text(json.dumps(manifest), "utf-8")


def test_the_highest_version_is_served_in_numeric_order(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    for version in ("2", "10", "9"):
        _place(shipped_model_dir, tmp_path, "sentiment", version)

    registry = ModelRegistry.load(cpu_settings(tmp_path))

    assert registry.get().info.version == "10"
    assert registry.get("sentiment").model.directory == tmp_path / "sentiment" / "10"


def test_several_models_need_a_default(shipped_model_dir: Path, tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        _place(shipped_model_dir, tmp_path, name, "1")

    with pytest.raises(RepositoryError) as raised:
        ModelRegistry.load(cpu_settings(tmp_path))
    registry = ModelRegistry.load(cpu_settings(tmp_path, default_model="beta"))

    assert str(raised.value) == (
        "The repository has several models (alpha, beta): set ATTNSERVE_DEFAULT_MODEL, "
        "or write in the repository's default_model.txt, the one POST /v1/predict should use"
    )
    assert registry.names == ["alpha", "beta"]
    assert registry.get().info.name == "beta"
    assert [model.name for model in registry.list_models().models] == ["alpha", "beta"]
    with pytest.raises(ModelNotFound, match=r"Known models: alpha, beta\."):
        registry.get("gamma")


def test_the_repository_may_declare_its_default_and_the_setting_overrides_it(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    for name in ("alpha", "beta"):
        _place(shipped_model_dir, tmp_path, name, "1")
    (tmp_path / "default_model.txt").write_text("alpha\n", "utf-8")

    declared = ModelRegistry.load(cpu_settings(tmp_path))
    overridden = ModelRegistry.load(cpu_settings(tmp_path, default_model="beta"))

    assert declared.names == ["alpha", "beta"]
    assert declared.get().info.name == "alpha"
    assert overridden.get().info.name == "beta"


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ("gamma\n", "Default model 'gamma' is not in the repository (it has: alpha, beta)"),
        (" \n", "{root}/default_model.txt is empty: write the default model's name in it"),
    ],
    ids=["unknown", "empty"],
)
def test_a_declared_default_that_is_not_served_is_an_error(
    shipped_model_dir: Path, tmp_path: Path, declared: str, message: str
) -> None:
    for name in ("alpha", "beta"):
        _place(shipped_model_dir, tmp_path, name, "1")
    (tmp_path / "default_model.txt").write_text(declared, "utf-8")

    with pytest.raises(RepositoryError) as raised:
        ModelRegistry.load(cpu_settings(tmp_path))

    assert str(raised.value) == message.format(root=tmp_path)


def test_a_default_model_that_is_not_there_is_an_error(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    _place(shipped_model_dir, tmp_path, "alpha", "1")

    with pytest.raises(RepositoryError) as raised:
        ModelRegistry.load(cpu_settings(tmp_path, default_model="beta"))

    assert str(raised.value) == "Default model 'beta' is not in the repository (it has: alpha)"


def test_a_manifest_that_disagrees_with_its_directory_is_an_error(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    _place(shipped_model_dir, tmp_path, "alpha", "1")
    (tmp_path / "alpha").rename(tmp_path / "beta")

    with pytest.raises(RepositoryError) as raised:
        ModelRegistry.load(cpu_settings(tmp_path))

    assert str(raised.value) == (
        f"No usable model in {tmp_path}: beta: manifest says alpha/1, the directory is beta/1"
    )


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ([], "Model repository {root} holds no models (expected <name>/<version>/)"),
        (["alpha"], "{root}/alpha: no version directories (expected e.g. 1/)"),
        (
            ["alpha/latest"],
            "{root}/alpha/latest: version directories must be numbers like 3 or 1.2",
        ),
    ],
    ids=["empty", "no-versions", "non-numeric-version"],
)
def test_a_repository_without_a_servable_layout_is_an_error(
    tmp_path: Path, layout: list[str], message: str
) -> None:
    for directory in layout:
        (tmp_path / directory).mkdir(parents=True)

    with pytest.raises(RepositoryError) as raised:
        ModelRegistry.load(cpu_settings(tmp_path))

    assert str(raised.value) == message.format(root=tmp_path)


def test_a_missing_repository_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="does not exist"):
        ModelRegistry.load(cpu_settings(tmp_path / "nowhere"))
