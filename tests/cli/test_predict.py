"""`attnserve predict`: the label and the text by attention, --json, --html, --url; --file
scoring a file into JSONL or CSV; one-line errors with exit 1."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from attnserve.cli.main import app
from attnserve.service.registry import find_models
from attnserve.service.schemas import PredictResponse
from tests.conftest import DEFAULT_MODEL

TEXT = "The battery life is great but the screen is awful"
runner = CliRunner()


def test_prints_the_label_and_the_text(
    shipped_repository: Path, shipped_manifest: dict[str, Any]
) -> None:
    done = runner.invoke(app, ["predict", "--repository", str(shipped_repository), TEXT])

    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == f"{shipped_manifest['name']} v1"
    assert lines[1].split()[0] in {"negative", "positive"}
    assert lines[2] == TEXT


def test_says_when_the_model_could_not_read_the_text(
    shipped_repository: Path, tmp_path: Path
) -> None:
    page = tmp_path / "heatmap.html"
    done = runner.invoke(
        app,
        [
            *("predict", "--repository", str(shipped_repository), "--html", str(page)),
            *("😀 🙃", "great 😀", TEXT),
        ],
    )

    assert done.exit_code == 0, done.output
    unreadable = "unreadable: the model knew none of its words; the label is a guess"
    partly = "read 50% of its words: the model knew the others only as unknown"
    said, written = done.stdout, page.read_text("utf-8")
    assert said.count(f"({unreadable})") == said.count(f"({partly})") == 1
    assert said.count("(read ") == 1  # a text it read whole gets no note
    assert written.count(unreadable) == written.count(partly) == 1
    assert written.count('class="note"') == 2


def test_json_is_the_servers_answer_and_html_writes_a_heatmap(
    shipped_repository: Path, live_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "heatmap.html"
    done = runner.invoke(
        app,
        ["predict", "--repository", str(shipped_repository), "--json", "--html", str(out), TEXT],
    )

    assert done.exit_code == 0, done.output
    local = PredictResponse.model_validate_json(done.stdout)
    served = httpx.post(f"{live_server}/v1/predict", json={"text": TEXT}).json()
    assert local.model_dump(mode="json") == served
    page = out.read_text("utf-8")
    for token in local.predictions[0].tokens:
        assert f'data-attention="{token.attention:.6f}" title="attention' in page


def test_url_asks_a_running_server(live_server: str) -> None:
    done = runner.invoke(app, ["predict", "--url", live_server, "--json", TEXT, "Loved it"])

    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    served = httpx.post(f"{live_server}/v1/predict", json={"texts": [TEXT, "Loved it"]}).json()
    assert body == served


def test_runtime_errors_are_one_line_and_exit_1(
    live_server: str, shipped_repository: Path, tmp_path: Path
) -> None:
    remote = runner.invoke(app, ["predict", "--url", live_server, "--model", "nope", TEXT])
    local = runner.invoke(app, ["predict", "--repository", str(shipped_repository), "   "])
    nowhere = runner.invoke(app, ["predict", "--url", "http://127.0.0.1:9", TEXT])
    no_repository = runner.invoke(app, ["predict", "--repository", str(tmp_path / "none"), TEXT])
    no_model = runner.invoke(
        app, ["predict", "--repository", str(shipped_repository), "--model", "nope", TEXT]
    )

    failures = (remote, local, nowhere, no_repository, no_model)
    assert [done.exit_code for done in failures] == [1] * 5
    assert all(done.stderr.count("\n") == 1 for done in failures)
    known = ", ".join(sorted(find_models(shipped_repository)))
    assert (
        remote.stderr == f"error: {live_server} serves no model named 'nope'; it serves: {known}\n"
    )
    assert local.stderr.startswith("error: Text at index 0 is empty")
    assert nowhere.stderr.startswith("error: cannot reach http://127.0.0.1:9: ")
    assert no_repository.stderr == (
        f"error: no model repository at {tmp_path / 'none'} (the default is ./model_repository): "
        "pass --repository PATH or set ATTNSERVE_MODEL_REPOSITORY\n"
    )
    assert no_model.stderr == (
        f"error: no model named 'nope' in {shipped_repository}; it has: {known}\n"
    )


def test_usage_errors_stay_clicks_exit_2(shipped_repository: Path, tmp_path: Path) -> None:
    neither = runner.invoke(app, ["predict", "--repository", str(shipped_repository)])
    both = runner.invoke(app, ["predict", "--file", str(tmp_path / "x.txt"), TEXT])

    assert neither.exit_code == both.exit_code == 2
    assert "give texts to classify, or --file PATH" in neither.stderr


def test_only_the_model_asked_for_is_loaded(
    shipped_repository: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repository = tmp_path / "repository"
    shutil.copytree(shipped_repository / "lstm", repository / "lstm")
    (repository / "unloadable" / "1").mkdir(parents=True)  # no manifest: would fail to load

    with caplog.at_level(logging.INFO, logger="attnserve.service"):
        done = runner.invoke(
            app, ["predict", "--repository", str(repository), "--model", "lstm", "--json", TEXT]
        )

    assert done.exit_code == 0, done.output
    assert PredictResponse.model_validate_json(done.stdout).model == "lstm"
    # a registry would have tried (and logged) every model of the repository
    assert [r for r in caplog.records if getattr(r, "model", None) == "unloadable"] == []


TEXTS = ["The battery life is great", "  ", "Awful, just awful", "ok"]


def _served(url: str, texts: list[str]) -> list[dict[str, object]]:
    answer = httpx.post(f"{url}/v1/predict", json={"texts": texts}).json()
    predictions: list[dict[str, object]] = answer["predictions"]
    return predictions


def test_a_csv_file_is_scored_in_order_with_refused_texts_kept(
    shipped_repository: Path, live_server: str, tmp_path: Path
) -> None:
    source = tmp_path / "reviews.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review"])
        writer.writerows(enumerate(TEXTS))
    out = tmp_path / "scored.jsonl"

    done = runner.invoke(
        app,
        [
            *("predict", "--repository", str(shipped_repository), "--file", str(source)),
            *("--text-column", "review", "--out", str(out), "--tokens"),
        ],
    )

    assert done.exit_code == 0, done.output
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [(r["line"], r["text"]) for r in records] == [(i + 2, t) for i, t in enumerate(TEXTS)]
    assert records[1] == {"line": 3, "text": "  ", "error": "empty_text"}
    kept = [TEXTS[0], TEXTS[2], TEXTS[3]]
    for record, served in zip(
        [records[0], records[2], records[3]], _served(live_server, kept), strict=True
    ):
        assert (record["label"], record["score"]) == (served["label"], served["score"])
        assert record["probabilities"] == served["probabilities"]
        assert record["tokens"] == served["tokens"]
        assert record["readable"] == served["readable"]
    # off a terminal: a plain line per tenth done, then the counts
    lines = done.stderr.splitlines()
    assert lines[-2] == "scored 4/4 texts"
    assert lines[-1].startswith(f"{DEFAULT_MODEL}: scored 3 of 4 texts in ")
    assert lines[-1].endswith(f"; 1 refused (empty_text 1); wrote {out}")


def test_standard_input_through_a_server_is_chunked_to_its_limit_and_written_as_csv(
    two_text_server: str, live_server: str
) -> None:
    lines = [f"{text} number {n}" for n in range(5) for text in ("Great phone", "Bad screen")]

    done = runner.invoke(
        app,
        [
            *("predict", "--url", two_text_server, "--file", "-", "--output-format", "csv"),
            *("--model", "lstm"),
        ],
        input="\n".join(lines) + "\n",
    )

    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["text"] for row in rows] == lines
    assert [int(row["line"]) for row in rows] == list(range(1, 11))
    served = httpx.post(f"{live_server}/v1/models/lstm/predict", json={"texts": lines}).json()[
        "predictions"
    ]
    assert [row["label"] for row in rows] == [p["label"] for p in served]
    assert [float(row["probability_positive"]) for row in rows] == [
        p["probabilities"]["positive"] for p in served
    ]
    assert [float(row["readable"]) for row in rows] == [p["readable"] for p in served]
    assert {row["error"] for row in rows} == {""}
    assert done.stderr.splitlines()[-1].startswith("lstm: scored 10 of 10 texts in ")


def test_a_bad_file_is_one_line_and_exit_1(shipped_repository: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": 3}\n', encoding="utf-8")
    wrong_column = tmp_path / "wrong.csv"
    wrong_column.write_text("review\nfine\n", encoding="utf-8")

    bad = runner.invoke(
        app, ["predict", "--repository", str(shipped_repository), "--file", str(broken)]
    )
    column = runner.invoke(
        app, ["predict", "--repository", str(shipped_repository), "--file", str(wrong_column)]
    )
    missing = runner.invoke(
        app, ["predict", "--repository", str(shipped_repository), "--file", str(tmp_path / "no")]
    )

    assert bad.exit_code == column.exit_code == missing.exit_code == 1
    assert bad.stderr == f'error: {broken}:2: "text" must be a string\n'
    assert column.stderr == (
        f"error: {wrong_column}:1: header lacks column(s) ['text'] (it has ['review'])\n"
    )
    assert missing.stderr.startswith("error: [Errno 2] No such file or directory")
