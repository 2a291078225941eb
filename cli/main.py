"""The `attnserve` command: train, export, evaluate, serve and predict.

    attnserve train --run-dir runs/bilstm-additive
    attnserve export runs/bilstm-additive --name bilstm-additive
    attnserve train --architecture minilm-attention --run-dir runs/minilm-attention
    attnserve export runs/minilm-attention --name minilm-attention --int8
    attnserve evaluate model_repository/bilstm-additive/1
    attnserve serve
    attnserve predict "The battery life is great but the screen is awful"
    attnserve predict --url http://127.0.0.1:8000 --html heatmap.html "Loved it"

`train` and `export` need the `train` extra (PyTorch); they import it only when run, so
the serving commands work on the serving install alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from attnserve.service.predictions import Predictions
    from attnserve.service.registry import ModelRegistry
    from attnserve.service.schemas import PredictResponse

app = typer.Typer(
    help="Sentiment classification with per-token attention: train, export, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_DATA = [
    Path("data/sentiment-labelled-sentences/amazon_cells_labelled.txt"),
    Path("data/sentiment-labelled-sentences/yelp_labelled.txt"),
]
DEFAULT_REPOSITORY = Path("model_repository")


@app.command()
def train(
    data: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Data files (.txt UCI format, .csv, .tsv, .jsonl). "
            "Default: the amazon and yelp files under data/."
        ),
    ] = None,
    run_dir: Annotated[Path, typer.Option(help="Where the run is written.")] = Path(
        "runs/bilstm-additive"
    ),
    architecture: Annotated[
        str, typer.Option(help="An architecture of models/architectures.py (README lists them).")
    ] = ("bilstm-additive"),
    seed: Annotated[int, typer.Option(help="Seed of initialisation and shuffling.")] = 13,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated seeds: train one run per seed under RUN_DIR/seed-N "
            "and print the test accuracy's mean ± std."
        ),
    ] = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the train/val/test split.")] = 13,
    max_epochs: Annotated[int | None, typer.Option(help="Upper bound on epochs.")] = None,
    skip_bad: Annotated[
        bool, typer.Option(help="Skip malformed lines (counted) instead of failing.")
    ] = False,
    limit_per_source: Annotated[
        int | None, typer.Option(help="Use only the first N examples of each file.")
    ] = None,
) -> None:
    """Train a classifier on labelled sentences and write a run directory."""
    from dataclasses import replace

    from attnserve.models.training import train as train_run
    from attnserve.models.training import train_config_for

    config = train_config_for(architecture, seed=seed, split_seed=split_seed)
    if max_epochs is not None:
        config = replace(config, max_epochs=max_epochs)
    paths = data or DEFAULT_DATA
    if seeds is None:
        record = train_run(
            paths, run_dir, config, skip_bad=skip_bad, limit_per_source=limit_per_source
        )
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(record.metrics.items()))
        typer.echo(f"{run_dir}: {metrics} (best epoch {record.training.best_epoch})")
        return
    accuracies = []
    for each in (int(s) for s in seeds.split(",")):
        record = train_run(
            paths,
            run_dir / f"seed-{each}",
            replace(config, seed=each),
            skip_bad=skip_bad,
            limit_per_source=limit_per_source,
        )
        accuracies.append(record.metrics["test_accuracy"])
        typer.echo(
            f"seed {each}: test accuracy {record.metrics['test_accuracy']:.4f}, "
            f"validation accuracy {record.metrics['validation_accuracy']:.4f}"
        )
    typer.echo(
        f"test accuracy over {len(accuracies)} seeds: "
        f"mean {statistics.mean(accuracies):.4f} ± std {statistics.stdev(accuracies):.4f}"
    )


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `train`.")],
    name: Annotated[str, typer.Option(help="Model name in the repository.")],
    version: Annotated[str, typer.Option(help="Model version.")] = "1",
    repository: Annotated[Path, typer.Option(help="Model repository.")] = DEFAULT_REPOSITORY,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing version.")] = False,
    int8: Annotated[
        bool,
        typer.Option(
            help="Serve the dynamic int8 quantisation, checked against fp32 on the test split."
        ),
    ] = False,
    max_accuracy_drop: Annotated[
        float, typer.Option(help="With --int8: most test accuracy int8 may lose to fp32.")
    ] = 0.005,
    min_agreement: Annotated[
        float, typer.Option(help="With --int8: least share of test labels int8 and fp32 agree on.")
    ] = 0.99,
    optimize: Annotated[
        str | None,
        typer.Option(
            help="Save ONNX Runtime's optimised graph (basic or extended) instead of the "
            "exported one; it is parity-checked against PyTorch like any export."
        ),
    ] = None,
) -> None:
    """Export a trained run to ONNX, check parity with PyTorch, write the model directory."""
    from attnserve.export.onnx_export import export_run

    if optimize not in (None, "basic", "extended"):
        raise typer.BadParameter("--optimize takes basic or extended")
    model_dir = export_run(
        run_dir,
        repository,
        name=name,
        version=version,
        overwrite=overwrite,
        int8=int8,
        max_accuracy_drop=max_accuracy_drop,
        min_agreement=min_agreement,
        optimize=optimize,  # type: ignore[arg-type]
    )
    typer.echo(f"wrote {model_dir}")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A model directory <repository>/<name>/<v>.")],
    data: Annotated[
        list[Path] | None,
        typer.Option(help="Data files, in training order. Default: the manifest's."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Score a model on its recorded test split through ONNX Runtime, as the service would."""
    from attnserve.cli.evaluation import evaluate as evaluate_model

    report = evaluate_model(model_dir, data)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"{report.model} v{report.version} on {report.provider}")
    for name, scores in (("test", report.test), ("validation", report.validation)):
        typer.echo(
            f"{name:<10} accuracy {scores.accuracy:.4f}  macro-F1 {scores.macro_f1:.4f}  "
            f"({scores.examples} sentences)"
        )
    width = max(map(len, report.labels))
    typer.echo(
        f"confusion matrix on test (rows: true, columns: predicted)\n{'':<{width}}  "
        + "  ".join(f"{label:>{width}}" for label in report.labels)
    )
    for label, row in zip(report.labels, report.test.confusion, strict=True):
        typer.echo(f"{label:<{width}}  " + "  ".join(f"{n:>{width}}" for n in row))
    quantized = report.quantization
    if quantized is not None:
        typer.echo(
            f"int8 model.onnx ({quantized.int8_bytes / 1e6:.1f} MB) vs its fp32 graph "
            f"({quantized.fp32_bytes / 1e6:.1f} MB), at export on the same test split: "
            f"accuracy {quantized.int8_test_accuracy:.4f} vs {quantized.fp32_test_accuracy:.4f}, "
            f"same label for {quantized.agreement:.4f} of {quantized.test_examples} sentences"
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default ATTNSERVE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ATTNSERVE_PORT).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes, each with its own copy of the models. Unless "
            "ATTNSERVE_INTRA_OP_THREADS is set, each gets cores / workers ONNX Runtime threads.",
        ),
    ] = 1,
) -> None:
    """Serve the model repository over HTTP (settings from ATTNSERVE_* variables)."""
    from attnserve.service.app import create_app
    from attnserve.service.errors import StartupError
    from attnserve.service.server import run_server
    from attnserve.service.settings import Settings

    overrides = {key: value for key, value in (("host", host), ("port", port)) if value}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if workers > 1:
        # Each worker builds its app from the environment: hand the overrides down that way.
        os.environ.update(
            {f"ATTNSERVE_{key.upper()}": str(value) for key, value in overrides.items()}
        )
        if settings.intra_op_threads == 0:
            threads = max(1, (os.cpu_count() or 1) // workers)
            os.environ["ATTNSERVE_INTRA_OP_THREADS"] = str(threads)
        run_server(None, settings, workers)
        return
    try:
        application = create_app(settings)
    except StartupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    # uvicorn drains, then re-raises SIGTERM against the handler it found: make that a clean exit
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if not run_server(application, settings):
        raise typer.Exit(3)  # uvicorn's status for a failed startup


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@app.command()
def predict(
    texts: Annotated[list[str], typer.Argument(help="Texts to classify.")],
    model: Annotated[str | None, typer.Option(help="Model name (default: the default).")] = None,
    url: Annotated[
        str | None,
        typer.Option(help="A running server, e.g. http://127.0.0.1:8000 (default: no server)."),
    ] = None,
    repository: Annotated[
        Path | None,
        typer.Option(help="Model repository to load without a server (default: settings')."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw answer as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a standalone heatmap HTML file.")
    ] = None,
) -> None:
    """Classify texts; print each label and the text coloured by attention."""
    from attnserve.cli.heatmap import html_heatmap, terminal_heatmap

    response = (
        _remote_predict(url, texts, model) if url else _local_predict(repository, texts, model)
    )
    if as_json:
        typer.echo(response.model_dump_json(indent=2))
    else:
        from rich.console import Console

        console = Console(highlight=False)
        # piped: a text and its weights on one line each, however long, for what reads them
        console.print(terminal_heatmap(texts, response), soft_wrap=not console.is_terminal)
    if html is not None:
        html.write_text(html_heatmap(texts, response), encoding="utf-8")
        typer.echo(f"wrote {html}", err=True)


def _local_predict(repository: Path | None, texts: list[str], model: str | None) -> PredictResponse:
    from attnserve.service.errors import ServiceError, StartupError
    from attnserve.service.registry import ModelRegistry
    from attnserve.service.schemas import PredictResponse
    from attnserve.service.settings import Settings
    from attnserve.service.v1_json import predict_response_json

    settings = Settings() if repository is None else Settings(model_repository=repository)
    try:
        registry = ModelRegistry.load(settings)
        predictions = asyncio.run(_predict_and_close(registry, texts, model))
    except ServiceError as error:
        _fail(error.message)
    except StartupError as error:
        _fail(str(error))
    return PredictResponse.model_validate_json(predict_response_json(predictions))


async def _predict_and_close(
    registry: ModelRegistry, texts: list[str], model: str | None
) -> Predictions:
    try:
        return await registry.get(model).predict(texts)
    finally:
        await registry.close()


def _remote_predict(url: str, texts: list[str], model: str | None) -> PredictResponse:
    """Asks a running server, through the project's Python client (`pip install ./client`)."""
    from attnserve.service.schemas import PredictResponse

    try:
        from attnserve_client import APIError, Client, TransportError
    except ImportError:
        _fail("--url needs the Python client attnserve-client: pip install ./client")
    try:
        with Client(url, timeout=30.0) as client:
            answer = client.predict_response(texts, model=model)
    except APIError as error:
        _fail(f"{url} answered {error.status}: {error.message}")
    except TransportError as error:
        _fail(f"cannot reach {url}: {error}")
    return PredictResponse.model_validate(answer.model_dump())


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
