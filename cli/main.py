"""The `attnserve` command: train, export, evaluate, serve and predict.

    attnserve train --run-dir runs/bilstm-additive
    attnserve export runs/bilstm-additive --name bilstm-additive
    attnserve train --architecture minilm-attention --run-dir runs/minilm-attention
    attnserve export runs/minilm-attention --name minilm-attention --int8
    attnserve train reviews.csv --text-column review --label-column sentiment --run-dir runs/mine
    attnserve evaluate model_repository/bilstm-additive/1
    attnserve calibrate model_repository/lstm/1
    attnserve serve --repository model_repository
    attnserve predict "The battery life is great but the screen is awful"
    attnserve predict --url http://127.0.0.1:8000 --html heatmap.html "Loved it"
    attnserve predict --file reviews.csv --text-column review --out scored.csv

`train` and `export` need the `train` extra (PyTorch); they import it only when run, so
the serving commands work on the serving install alone. A runtime failure (a bad data file, a
missing repository, an unreachable server) is one line on standard error and exit status 1;
a usage error is click's, status 2.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import statistics
import sys
from collections.abc import Iterator
from importlib.metadata import version as installed_version
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

# Typer reads the commands' annotations at run time: the types of their options are imported
# here (each light: no torch, no web framework), the rest only for the type checker.
from attnserve.artifact.records import TextFormat
from attnserve.cli.errors import CommandError, require_repository
from attnserve.cli.score_file import OutputFormat
from attnserve.export.optimize import OptimizationLevel
from attnserve.models.architecture_names import ArchitectureName
from attnserve.service.settings import LogLevel

if TYPE_CHECKING:
    from collections.abc import Callable

    from attnserve.cli.scoring import Scorer
    from attnserve.models.checkpoint import RunRecord
    from attnserve.models.training import TrainConfig

app = typer.Typer(
    help="Sentiment classification with per-token attention: train, export, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"attnserve {installed_version('attnserve')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sentiment classification with per-token attention: train, export, serve."""
    # Every command loads ONNX Runtime after this (the serving path sets it too): no usage
    # events sent, nothing written under $HOME (service/onnxruntime_env.py says why).
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


@contextlib.contextmanager
def _one_line_errors(*expected: type[Exception]) -> Iterator[None]:
    """`expected` failures (and CommandError) end the command with one line and status 1."""
    caught: tuple[type[Exception], ...] = (CommandError, *expected)
    try:
        yield
    except caught as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error


def _terminal() -> bool:
    return sys.stderr.isatty()


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
            help="Data files: .csv or .tsv with a header, .jsonl objects, or the UCI .txt format "
            "(sentence<TAB>0|1, read as negative|positive). "
            "Default: the amazon and yelp files under data/.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    run_dir: Annotated[Path, typer.Option(help="Where the run is written.")] = Path(
        "runs/bilstm-additive"
    ),
    architecture: Annotated[
        ArchitectureName,
        typer.Option(help="The architecture to train (the README describes each)."),
    ] = "bilstm-additive",
    text_column: Annotated[
        str, typer.Option(help="The CSV/TSV column, or JSONL key, holding the text.")
    ] = "text",
    label_column: Annotated[
        str, typer.Option(help="The CSV/TSV column, or JSONL key, holding the label.")
    ] = "label",
    labels: Annotated[
        str | None,
        typer.Option(
            help="The labels in the order the model should give them, comma-separated (each "
            "label of the data once). Default: integers in numeric order, else alphabetical."
        ),
    ] = None,
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
    rdrop_alpha: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="R-Drop: run each batch twice under independent dropout and add this times "
            "the symmetric KL divergence of the two predictions to the loss (0: off, the "
            "default; measured in the README).",
        ),
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option(help="Skip malformed lines (counted) instead of failing.")
    ] = False,
    limit_per_source: Annotated[
        int | None, typer.Option(help="Use only the first N examples of each file.")
    ] = None,
) -> None:
    """Train a classifier on labelled sentences (N >= 2 labels) and write a run directory."""
    from dataclasses import replace
    from functools import partial

    from attnserve.artifact.data import Columns
    from attnserve.models.training import train as train_run
    from attnserve.models.training import train_config_for

    run = partial(
        train_run,
        data or DEFAULT_DATA,
        columns=Columns(text=text_column, label=label_column),
        label_order=None if labels is None else [name.strip() for name in labels.split(",")],
        skip_bad=skip_bad,
        limit_per_source=limit_per_source,
        progress=_terminal(),
    )
    with _one_line_errors(ValueError, OSError), _epoch_lines("attnserve.models.training"):
        config = train_config_for(architecture, seed=seed, split_seed=split_seed)
        if max_epochs is not None:
            config = replace(config, max_epochs=max_epochs)
        if rdrop_alpha is not None:
            config = replace(config, rdrop_alpha=rdrop_alpha)
        if seeds is None:
            _report_training(run_dir, run(run_dir, config))
            return
        accuracies = _train_seeds(run, run_dir, config, [int(s) for s in seeds.split(",")])
    typer.echo(
        f"test accuracy over {len(accuracies)} seeds: "
        f"mean {statistics.mean(accuracies):.4f} ± std {statistics.stdev(accuracies):.4f}"
    )


@contextlib.contextmanager
def _epoch_lines(name: str) -> Iterator[None]:
    """Off a terminal, `name`'s info lines (one per epoch) on standard error: what a log gets
    instead of a progress bar."""
    if _terminal():
        yield
        return
    logger = logging.getLogger(name)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _report_training(run_dir: Path, record: RunRecord) -> None:
    from attnserve.artifact.scores import Scores
    from attnserve.cli.report import class_balance_lines, confusion_lines, label_score_lines

    metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(record.metrics.items()))
    lines = [f"{run_dir}: {metrics} (best epoch {record.training.best_epoch})"]
    lines += class_balance_lines(record.class_balance, record.labels)
    lines += label_score_lines(record.labels, Scores(record.test_confusion), "test")
    lines += confusion_lines(record.labels, record.test_confusion, "test")
    typer.echo("\n".join(lines))


def _train_seeds(
    run: Callable[[Path, TrainConfig], RunRecord],
    run_dir: Path,
    config: TrainConfig,
    seeds: list[int],
) -> list[float]:
    """One run per seed under RUN_DIR/seed-N; each one's test accuracy."""
    from dataclasses import replace

    accuracies = []
    for each in seeds:
        record = run(run_dir / f"seed-{each}", replace(config, seed=each))
        accuracies.append(record.metrics["test_accuracy"])
        typer.echo(
            f"seed {each}: test accuracy {record.metrics['test_accuracy']:.4f}, "
            f"validation accuracy {record.metrics['validation_accuracy']:.4f}"
        )
    return accuracies


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
            help="Serve the static int8 quantisation (calibrated on the training split), "
            "checked against fp32 on the test split."
        ),
    ] = False,
    max_accuracy_drop: Annotated[
        float, typer.Option(help="With --int8: most test accuracy int8 may lose to fp32.")
    ] = 0.005,
    min_agreement: Annotated[
        float, typer.Option(help="With --int8: least share of test labels int8 and fp32 agree on.")
    ] = 0.99,
    optimize: Annotated[
        OptimizationLevel | None,
        typer.Option(
            help="Save ONNX Runtime's optimised graph instead of the exported one; it is "
            "parity-checked against PyTorch like any export."
        ),
    ] = None,
) -> None:
    """Export a trained run to ONNX, check parity with PyTorch, write the model directory."""
    from attnserve.export.onnx_export import export_run
    from attnserve.export.parity import ParityError
    from attnserve.export.quantize import QuantizationError

    with _one_line_errors(ValueError, OSError, ParityError, QuantizationError):
        model_dir = export_run(
            run_dir,
            repository,
            name=name,
            version=version,
            overwrite=overwrite,
            int8=int8,
            max_accuracy_drop=max_accuracy_drop,
            min_agreement=min_agreement,
            optimize=optimize,
        )
    typer.echo(f"wrote {model_dir}")


@app.command()
def calibrate(
    model_dirs: Annotated[
        list[Path], typer.Argument(help="Model directories <repository>/<name>/<version>.")
    ],
    data: Annotated[
        list[Path] | None,
        typer.Option(help="Data files, in training order. Default: each manifest's."),
    ] = None,
) -> None:
    """Fit each model's temperature on its recorded validation split; rewrite its manifest."""
    from attnserve.export.calibration import calibrate_model_dir

    for model_dir in model_dirs:
        calibration = calibrate_model_dir(model_dir, data).calibration
        assert calibration is not None
        typer.echo(f"{model_dir}: {calibration.summary()}")


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
    from attnserve.cli.report import confusion_lines
    from attnserve.service.errors import StartupError

    with _one_line_errors(ValueError, OSError, StartupError):
        report = evaluate_model(model_dir, data)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"{report.model} v{report.version} on {report.provider}")
    for name, scores in (("test", report.test), ("validation", report.validation)):
        typer.echo(
            f"{name:<10} accuracy {scores.accuracy:.4f}  macro-F1 {scores.macro_f1:.4f}  "
            f"ECE {scores.calibration_error:.4f}  ({scores.examples} sentences)"
        )
    spreads = {
        "test": report.test.calibrated_error,
        "validation": report.validation.calibrated_error,
    }
    typer.echo(
        "ECE of perfectly calibrated probabilities with these confidences on as many sentences "
        f"({spreads['test'].draws} draws): "
        + ", ".join(
            f"{name} {spread.median:.4f} ({spread.interval:.0%} within "
            f"{spread.low:.4f}-{spread.high:.4f})"
            for name, spread in spreads.items()
        )
    )
    typer.echo("\n".join(confusion_lines(report.labels, report.test.confusion, "test")))
    if report.behaviour:
        typer.echo(
            "behaviour set (data/behaviour/): "
            + ", ".join(
                f"{category} {score.correct}/{score.examples}"
                for category, score in report.behaviour.items()
            )
        )
    calibration = report.calibration
    if calibration is None:
        typer.echo("not calibrated: the graph's probabilities are served as they are")
    else:
        typer.echo(f"calibrated on validation: {calibration.summary()}")
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
    repository: Annotated[
        Path | None,
        typer.Option(
            help="Model repository (default ATTNSERVE_MODEL_REPOSITORY, else ./model_repository)."
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default ATTNSERVE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ATTNSERVE_PORT).")] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            help="Also serve the Open Inference Protocol over gRPC on this port "
            "(default ATTNSERVE_GRPC_PORT; unset: no gRPC)."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes, each with its own copy of the models. Unless "
            "ATTNSERVE_INTRA_OP_THREADS is set, each gets cores / workers ONNX Runtime threads.",
        ),
    ] = 1,
    log_level: Annotated[
        LogLevel | None, typer.Option(help="Level of the logs (default ATTNSERVE_LOG_LEVEL).")
    ] = None,
) -> None:
    """Serve the model repository over HTTP, and gRPC with a gRPC port (settings from
    ATTNSERVE_* variables)."""
    from attnserve.service.app import create_app
    from attnserve.service.errors import StartupError
    from attnserve.service.providers import usable_cores
    from attnserve.service.server import run_server
    from attnserve.service.settings import Settings

    given = {
        "model_repository": repository,
        "host": host,
        "port": port,
        "grpc_port": grpc_port,
        "log_level": log_level,
    }
    overrides = {key: value for key, value in given.items() if value is not None}
    with _one_line_errors(StartupError):
        settings = Settings(**overrides)  # type: ignore[arg-type]
        require_repository(settings.model_repository)
        if workers == 1:
            application = create_app(settings)
    if workers > 1:
        # Each worker builds its app from the environment: hand the overrides down that way.
        os.environ.update(
            {f"ATTNSERVE_{key.upper()}": str(value) for key, value in overrides.items()}
        )
        if settings.intra_op_threads == 0:
            threads = max(1, usable_cores() // workers)
            os.environ["ATTNSERVE_INTRA_OP_THREADS"] = str(threads)
        run_server(None, settings, workers)
        return
    # uvicorn drains, then re-raises SIGTERM against the handler it found: make that a clean exit
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if not run_server(application, settings, grpc_server=application.state.grpc_server):
        raise typer.Exit(3)  # uvicorn's status for a failed startup


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@app.command()
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="Score every text of a file (- for standard input): .csv/.tsv with a header, "
            ".jsonl objects, else one text a line.",
        ),
    ] = None,
    text_column: Annotated[
        str, typer.Option(help="With --file: the CSV/TSV column, or JSONL key, of the texts.")
    ] = "text",
    input_format: Annotated[
        TextFormat | None,
        typer.Option(help="With --file: its layout (default: by its suffix; lines for -)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="With --file: write the results here (default: standard output)."),
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(help="With --file: jsonl or csv (default: csv for an --out ending .csv)."),
    ] = None,
    tokens: Annotated[
        bool, typer.Option(help="With --file: add each text's tokens, spans and attention.")
    ] = False,
    parallel: Annotated[
        int, typer.Option(min=1, help="With --file and --url: requests in flight at once.")
    ] = 8,
    model: Annotated[str | None, typer.Option(help="Model name (default: the default).")] = None,
    url: Annotated[
        str | None,
        typer.Option(help="A running server, e.g. http://127.0.0.1:8000 (default: no server)."),
    ] = None,
    repository: Annotated[
        Path | None,
        typer.Option(
            help="Model repository to load the model from without a server (default "
            "ATTNSERVE_MODEL_REPOSITORY, else ./model_repository)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw answer as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a standalone heatmap HTML file.")
    ] = None,
) -> None:
    """Classify texts and show each one's attention, or score a file (--file) into JSONL/CSV."""
    if (file is None) == (not texts):
        raise typer.BadParameter("give texts to classify, or --file PATH (not both)")
    with _one_line_errors(OSError, ValueError):
        scorer = _scorer(url, repository, model)
        try:
            if file is not None:
                _score_file(
                    scorer, file, text_column, input_format, out, output_format, tokens, parallel
                )
            else:
                _print_predictions(scorer, texts or [], as_json, html)
        finally:
            scorer.close()


def _scorer(url: str | None, repository: Path | None, model: str | None) -> Scorer:
    from attnserve.cli.scoring import LocalScorer, RemoteScorer

    return RemoteScorer.connect(url, model) if url else LocalScorer.load(repository, model)


def _print_predictions(scorer: Scorer, texts: list[str], as_json: bool, html: Path | None) -> None:
    from attnserve.cli.errors import TextsRefused
    from attnserve.cli.heatmap import html_heatmap, terminal_heatmap
    from attnserve.service.schemas import PredictResponse

    chunks = [texts[i : i + scorer.max_texts] for i in range(0, len(texts), scorer.max_texts)]
    try:
        answers = [scorer.score(chunk).model_dump() for chunk in chunks]
    except TextsRefused as refused:
        raise CommandError(refused.message) from refused
    predictions = [p for answer in answers for p in answer["predictions"]]
    response = PredictResponse.model_validate({**answers[0], "predictions": predictions})
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


def _score_file(
    scorer: Scorer,
    source: str,
    text_column: str,
    input_format: TextFormat | None,
    out: Path | None,
    output_format: OutputFormat | None,
    tokens: bool,
    parallel: int,
) -> None:
    from attnserve.cli.score_file import Progress, read_input, score_file
    from attnserve.cli.score_file import output_format as chosen_format

    texts = read_input(source, input_format, text_column)
    form = chosen_format(out, output_format)
    progress = Progress(len(texts), _terminal())
    with contextlib.ExitStack() as stack:
        output = (
            sys.stdout
            if out is None
            else stack.enter_context(out.open("w", encoding="utf-8", newline=""))
        )
        try:
            counts = score_file(
                scorer,
                texts,
                output,
                form,
                tokens=tokens,
                parallel_calls=parallel if scorer.parallel_safe else 1,
                progress=progress,
            )
        finally:
            progress.close()
    where = "" if out is None else f"; wrote {out}"
    typer.echo(f"{scorer.model}: {counts.summary()}{where}", err=True)
