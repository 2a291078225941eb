"""The command line as people expect it: --version, choices in --help, one-line errors with
exit 1 for runtime failures (a bad data file, a missing repository), click's 2 for usage."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from typer.testing import CliRunner

from attnserve.cli.main import app
from attnserve.models.checkpoint import RECORD_FILE, RunRecord
from tests.three_class import write_three_class_jsonl

runner = CliRunner()


def test_version() -> None:
    done = runner.invoke(app, ["--version"])

    assert done.exit_code == 0
    assert done.stdout == f"attnserve {version('attnserve')}\n"


def test_choices_are_shown_in_help_and_checked() -> None:
    wide = {"COLUMNS": "400"}
    train_help = runner.invoke(app, ["train", "--help"], env=wide).stdout
    export_help = runner.invoke(app, ["export", "--help"], env=wide).stdout
    serve_help = runner.invoke(app, ["serve", "--help"], env=wide).stdout
    unknown = runner.invoke(app, ["train", "--architecture", "gpt"])

    assert "lstm|lstm-additive|bilstm-additive|minilm-attention|" in train_help
    assert "basic|extended" in export_help
    assert "debug|info|warning|error" in serve_help and "--repository" in serve_help
    assert unknown.exit_code == 2
    assert "'gpt' is not one of" in unknown.stderr


def test_a_bad_data_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,1\nno label here\n", encoding="utf-8")
    single = tmp_path / "single.csv"
    single.write_text("text,label\nfine,yes\ngood,yes\n", encoding="utf-8")

    tiny = tmp_path / "tiny.csv"
    tiny.write_text("text,label\ngood,yes\nbad,no\nfine,yes\n", encoding="utf-8")

    done = runner.invoke(app, ["train", str(bad), "--run-dir", str(tmp_path / "run")])
    one_label = runner.invoke(app, ["train", str(single), "--run-dir", str(tmp_path / "run")])
    too_few = runner.invoke(app, ["train", str(tiny), "--run-dir", str(tmp_path / "run")])

    assert done.exit_code == one_label.exit_code == too_few.exit_code == 1
    assert too_few.stderr == (
        "error: 3 examples are too few: the 80/10/10 split leaves the validation or test side "
        "empty (give each label at least ten examples)\n"
    )
    assert done.stderr == f"error: {bad}:3: expected 2 fields, found 1\n"
    assert one_label.stderr == (
        "error: a classifier needs at least two labels; the data has only ['yes']\n"
    )
    assert not (tmp_path / "run").exists()


def test_jsonl_keys_and_a_label_order_that_is_not_the_datas(tmp_path: Path) -> None:
    data = write_three_class_jsonl(tmp_path / "reviews.jsonl", per_label=4)
    args = ["train", str(data), "--run-dir", str(tmp_path / "run"), "--max-epochs", "1"]
    args += ["--text-column", "review", "--label-column", "sentiment"]

    wrong = runner.invoke(app, [*args, "--labels", "good,bad"])
    default_keys = runner.invoke(app, ["train", str(data), "--run-dir", str(tmp_path / "run")])

    assert wrong.exit_code == default_keys.exit_code == 1
    assert wrong.stderr == (
        "error: the label order (good, bad) is not the labels in the data "
        "(negative, neutral, positive)\n"
    )
    assert default_keys.stderr == f'error: {data}:1: expected an object with "text" and "label"\n'


def test_training_off_a_terminal_prints_epoch_lines_not_bars(tmp_path: Path) -> None:
    data = write_three_class_jsonl(tmp_path / "reviews.jsonl", per_label=10)
    done = runner.invoke(
        app,
        [
            *("train", str(data), "--run-dir", str(tmp_path / "run"), "--max-epochs", "2"),
            *("--text-column", "review", "--label-column", "sentiment"),
        ],
    )

    assert done.exit_code == 0, done.output
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == ["epoch 1", "epoch 2"]
    assert "\r" not in done.stderr


def test_rdrop_alpha_is_trained_with_and_recorded(tmp_path: Path) -> None:
    data = write_three_class_jsonl(tmp_path / "reviews.jsonl", per_label=10)
    args = ["train", str(data), "--run-dir", str(tmp_path / "run"), "--max-epochs", "1"]
    args += ["--text-column", "review", "--label-column", "sentiment"]

    negative = runner.invoke(app, [*args, "--rdrop-alpha", "-1"])
    done = runner.invoke(app, [*args, "--rdrop-alpha", "0.5"])

    assert negative.exit_code == 2
    assert done.exit_code == 0, done.output
    record = RunRecord.model_validate_json((tmp_path / "run" / RECORD_FILE).read_text("utf-8"))
    assert record.training.hyperparameters["rdrop_alpha"] == 0.5


def test_serving_without_a_repository_says_what_to_pass(tmp_path: Path) -> None:
    done = runner.invoke(app, ["serve", "--repository", str(tmp_path / "none")])

    assert done.exit_code == 1
    assert done.stderr == (
        f"error: no model repository at {tmp_path / 'none'} (the default is ./model_repository): "
        "pass --repository PATH or set ATTNSERVE_MODEL_REPOSITORY\n"
    )
