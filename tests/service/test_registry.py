"""A repository of models: the highest version of each, and an unambiguous default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from attnserve.service.batching import Batcher
from attnserve.service.errors import ModelNotFound, ModelNotReady, RepositoryError
from attnserve.service.providers import usable_cores
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
        (
            ["alpha"],
            "No usable model in {root}: alpha: no version folders (expected e.g. 1/)",
        ),
        (
            ["alpha/latest"],
            "No usable model in {root}: alpha: no version folders (expected e.g. 1/); "
            "not versions: latest",
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


def test_stray_entries_are_skipped_and_unusable_model_folders_listed(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    _place(shipped_model_dir, tmp_path, "alpha", "1")
    (tmp_path / "alpha" / "1.bak").mkdir()  # a leftover beside the served version
    _place(shipped_model_dir, tmp_path, "beta", "2")
    (tmp_path / "lost+found").mkdir(mode=0o700)  # every ext4 volume's root
    (tmp_path / ".snapshot" / "1").mkdir(parents=True)
    (tmp_path / "README.txt").write_text("models", "utf-8")
    (tmp_path / "empty").mkdir()
    (tmp_path / "renamed" / "v2").mkdir(parents=True)
    (tmp_path / "default_model.txt").write_text("alpha\n", "utf-8")

    registry = ModelRegistry.load(cpu_settings(tmp_path))
    listed = registry.list_models()

    assert registry.names == ["alpha", "beta"]
    assert registry.get("alpha").model.directory == tmp_path / "alpha" / "1"
    assert [(m.name, m.version, m.reason) for m in listed.unavailable] == [
        ("empty", "", "no version folders (expected e.g. 1/)"),
        ("renamed", "", "no version folders (expected e.g. 1/); not versions: v2"),
    ]
    registry.check_ready("any")
    with pytest.raises(ModelNotReady):
        registry.check_ready("all")


def test_under_any_readiness_needs_the_default_model(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    _place(shipped_model_dir, tmp_path, "alpha", "1")
    (tmp_path / "broken" / "1").mkdir(parents=True)  # no artifact files: unavailable
    (tmp_path / "default_model.txt").write_text("broken\n", "utf-8")

    registry = ModelRegistry.load(cpu_settings(tmp_path))

    assert registry.names == ["alpha"]
    with pytest.raises(ModelNotReady, match="broken"):
        registry.check_ready("any")


def test_a_missing_repository_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="does not exist"):
        ModelRegistry.load(cpu_settings(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    ("concurrency", "expected"),
    [
        (None, {"minilm-attention": usable_cores(), "bilstm-additive": 1}),
        (3, {"minilm-attention": 3, "bilstm-additive": 3}),
    ],
)
def test_a_model_batches_at_once_as_its_hint_says_unless_the_setting_does(
    shipped_repository: Path,
    tmp_path: Path,
    concurrency: int | None,
    expected: dict[str, int],
) -> None:
    for name in ("minilm-attention", "bilstm-additive"):
        shutil.copytree(shipped_repository / name, tmp_path / name)

    registry = ModelRegistry.load(
        cpu_settings(tmp_path, default_model="minilm-attention", batch_concurrency=concurrency)
    )

    batchers = {name: predictor.runner for name, predictor in registry.predictors.items()}
    batches_at_once = {
        name: batcher.max_concurrent_batches
        for name, batcher in batchers.items()
        if isinstance(batcher, Batcher)
    }
    assert batches_at_once == expected
