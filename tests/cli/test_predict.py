"""`attnserve predict`: the label and the text by attention, --json, --html, --url."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from attnserve.cli.main import app
from attnserve.service.registry import find_models
from attnserve.service.schemas import PredictResponse

TEXT = "The battery life is great but the screen is awful"
runner = CliRunner()


def test_prints_the_label_and_the_text(shipped_repository: Path) -> None:
    done = runner.invoke(app, ["predict", "--repository", str(shipped_repository), TEXT])

    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == "bilstm-additive v1"
    assert lines[1].split()[0] in {"negative", "positive"}
    assert lines[2] == TEXT


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


def test_errors_are_one_line_and_exit_2(live_server: str, shipped_repository: Path) -> None:
    remote = runner.invoke(app, ["predict", "--url", live_server, "--model", "nope", TEXT])
    local = runner.invoke(app, ["predict", "--repository", str(shipped_repository), "   "])
    nowhere = runner.invoke(app, ["predict", "--url", "http://127.0.0.1:9", TEXT])

    assert remote.exit_code == local.exit_code == nowhere.exit_code == 2
    known = ", ".join(sorted(find_models(shipped_repository)))
    assert remote.stderr == (
        f"error: {live_server} answered 404: No model named 'nope'. Known models: {known}.\n"
    )
    assert local.stderr.startswith("error: Text at index 0 is empty")
    assert nowhere.stderr.startswith("error: cannot reach http://127.0.0.1:9: ")
