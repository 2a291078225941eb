"""Writes the figures of bench/results/*.json into BENCHMARKS.md, between its figure markers.

    .venv/bin/python -m bench.report

Everything between `<!-- figures:start -->` and `<!-- figures:end -->` is regenerated; the
text around the markers (the analysis) is kept as written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, RESULTS

DOC = REPO_ROOT / "BENCHMARKS.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
SCENARIO_32 = "32 connections"
SCENARIO_32_TEXTS = '32 connections, {"texts": [t]}'
SCENARIO_1 = "1 connection"
SCENARIO_BATCH = "64-text requests, 8 connections"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _machine(results: dict[str, Any]) -> str:
    m = results["machine"]
    return (
        f"`{results['command']}` on {m['cpu']} (SIMD: {m.get('simd', 'not recorded')}), "
        f"{m['cores']} cores, {m['system']}, "
        f"Python {m['python']}, {m['date']}, load average {m['load_average']} at the start"
    )


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "n/a"


def _with_workers_of(server: str, name: str) -> str:
    """`server` with as many workers as `name`: ("floor", "attnserve --workers 2") ->
    "floor --workers 2"."""
    return "".join((server, *name.partition(" --workers")[1:]))


def http_section(http: dict[str, Any], title: str | None = None) -> list[str]:
    title = title or f"Over HTTP, {http['model']}"
    lines = [
        f"### {title} (127.0.0.1, wrk)",
        "",
        _machine(http),
        "",
        f"Medians of {http['rounds']} interleaved rounds of {http['seconds']} s per scenario "
        "and server. Ratios are of requests/s (sentences/s for batches) to the floor's with as "
        "many workers and to the naive server's in the same run.",
        "",
        "| scenario | server | requests/s | sentences/s | p50 ms | p99 ms | x floor | x naive |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, servers in http["medians"].items():
        naive = servers.get("naive", {}).get("sentences_per_s", 0.0)
        for name, m in servers.items():
            floor = servers.get(_with_workers_of("floor", name), {}).get("sentences_per_s", 0.0)
            lines.append(
                f"| {scenario} | {name} | {m['requests_per_s']:.0f} | {m['sentences_per_s']:.0f} "
                f"| {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {_ratio(m['sentences_per_s'], floor)} "
                f"| {_ratio(m['sentences_per_s'], naive)} |"
            )
    return [*lines, ""]


def grpc_section(grpc: dict[str, Any]) -> list[str]:
    lines = [
        f"### HTTP and gRPC, {grpc['model']} (127.0.0.1, one server; wrk and h2load)",
        "",
        _machine(grpc),
        "",
        f"Medians of {grpc['rounds']} rounds of {grpc['seconds']} s per scenario and server, "
        "interleaved; the same texts over both protocols. HTTP: `POST /v1/predict` from "
        "as many connections; gRPC: `ModelInfer` on as many concurrent streams of one "
        "connection. The floors answer single texts with a constant of the same size: "
        "FastAPI on uvicorn (bench/servers/floor.py) and a bare grpcio server "
        "(bench/servers/grpc_floor.py). Latency is the mean (h2load reports no percentiles). "
        "Server CPU: the CPU time the server process (all its threads) spent over the run, "
        "a request answered; texts/batch: the mean texts each batch of the model held, from "
        "attnserve's metrics.",
        "",
        "| scenario | server | requests/s | sentences/s | mean ms | server CPU µs/request "
        "| texts/batch | failed | x HTTP | x floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, protocols in grpc["medians"].items():
        http = protocols["HTTP"]["requests_per_s"]
        for protocol, m in protocols.items():
            floor = protocols.get(f"{protocol} floor")  # attnserve's rows, by protocol
            by_floor = "" if floor is None else _ratio(m["requests_per_s"], floor["requests_per_s"])
            batch = f"{m['texts_per_batch']:.1f}" if "texts_per_batch" in m else ""
            lines.append(
                f"| {scenario} | {protocol} | {m['requests_per_s']:.0f} "
                f"| {m['sentences_per_s']:.0f} | {m['mean_ms']:.2f} "
                f"| {m['cpu_us_per_request']:.0f} | {batch} | {m['failed']} "
                f"| {_ratio(m['requests_per_s'], http)} "
                f"| {by_floor} |"
            )
    return [*lines, ""]


def grpc_goal_rows(grpc: dict[str, Any]) -> list[str]:
    """gRPC exists to be faster: single texts at 32 streams ≥ HTTP's at 32 connections."""
    single = next(iter(grpc["medians"].values()))
    times = single["gRPC"]["requests_per_s"] / single["HTTP"]["requests_per_s"]
    return [
        f"| single text: gRPC at 32 streams ≥ HTTP at 32 connections | {times:.2f}x "
        f"| {'met' if times >= 1 else 'missed'} |"
    ]


def inprocess_section(inprocess: dict[str, Any]) -> list[str]:
    by_batch = inprocess["by_batch_ms"]
    names = list(by_batch)
    torch_name = "pytorch eager fp32"
    lines = [
        "### In-process: ONNX Runtime against PyTorch eager",
        "",
        _machine(inprocess),
        "",
        f"Median of {inprocess['reps']} calls, one thread each; real sentences padded to the "
        "batch's longest.",
        "",
        "| batch | "
        + " | ".join(f"{n} ms (sentences/s)" for n in names)
        + " | PyTorch ÷ ORT time |",
        "|---:|" + "---:|" * (len(names) + 1),
    ]
    for size in by_batch[names[0]]:
        cells = [
            f"{by_batch[n][size]:.3f} ({int(size) / by_batch[n][size] * 1000:.0f})" for n in names
        ]
        speedup = by_batch[torch_name][size] / by_batch["onnxruntime fp32"][size]
        lines.append(f"| {size} | " + " | ".join(cells) + f" | {speedup:.2f}x |")
    open_ms = inprocess.get("session_open_ms", {})
    if open_ms:
        lines += [
            "",
            f"Opening a session on each graph (median of {inprocess['reps']}): "
            + ", ".join(f"{name} {ms:.1f} ms" for name, ms in open_ms.items())
            + ".",
        ]
    lines += [
        "",
        "Latency against text length (batch 1) and against batch size (24 tokens):",
        "",
        "![latency by length](bench/results/latency_by_length.png)",
        "![latency by batch](bench/results/latency_by_batch.png)",
        "",
    ]
    for title, key in (
        ("length (tokens, batch 1)", "by_length_ms"),
        ("batch (24 tokens)", "batch_sweep_24_tokens_ms"),
    ):
        series = inprocess[key]
        points = list(series[names[0]])
        lines += [
            f"| {title} | " + " | ".join(points) + " |",
            "|---|" + "---:|" * len(points),
        ]
        lines += [
            f"| {n} ms | " + " | ".join(f"{series[n][p]:.3f}" for p in points) + " |" for n in names
        ]
        lines.append("")
    return lines


def ceiling_section(ceiling: dict[str, Any]) -> list[str]:
    lines = [
        "### What ONNX Runtime alone serves: `python -m bench.ceiling`",
        "",
        _machine(ceiling),
        "",
        f"The shipped graphs, the same sentences pre-tokenised and padded as attnserve pads them, "
        f"no server around them ({ceiling['cores']} cores; 'a run per core': as many threads, "
        "each with a one-thread session); medians of "
        f"{ceiling['rounds']} interleaved rounds of {ceiling['seconds']:g} s. No server of these "
        "graphs can serve more on this machine.",
        "",
        "| model | scenario | sentences/s | CPU ms a sentence |",
        "|---|---|---:|---:|",
    ]
    for model, scenarios in ceiling["medians"].items():
        lines += [
            f"| {model} | {scenario} | {figures['sentences_per_s']:.0f} "
            f"| {figures['cpu_ms_per_sentence']:.3f} |"
            for scenario, figures in scenarios.items()
        ]
    # servers of a graph run beside the ceiling, on the same machine (bench.http --results
    # ceiling-http-NAME.json)
    for path in sorted(RESULTS.glob("ceiling-http-*.json")):
        served = json.loads(path.read_text())
        lines += [
            "",
            f"Served over HTTP on the same machine: `{served['command']}`, "
            f"{served['machine']['date']}, medians of {served['rounds']} rounds:",
            "",
            "| model | scenario | server | sentences/s | p50 ms |",
            "|---|---|---|---:|---:|",
        ]
        for scenario in (SCENARIO_1, SCENARIO_32, SCENARIO_BATCH):
            lines += [
                f"| {served['model']} | {scenario} | {server} | {m['sentences_per_s']:.0f} "
                f"| {m['p50_ms']:.2f} |"
                for server, m in served["medians"][scenario].items()
            ]
    return [*lines, ""]


def startup_section(startup: dict[str, Any]) -> list[str]:
    m = startup["medians"]
    return [
        "### Cold start and memory",
        "",
        _machine(startup),
        "",
        f"Median of {len(startup['runs'])} launches of `attnserve serve` (one worker, "
        f"serving {startup.get('models', 'all shipped')} models): "
        f"ready after **{m['ready_s']:.2f} s**, "
        "first successful prediction "
        f"after **{m['first_prediction_s']:.2f} s** (of which the server used "
        f"{m.get('cpu_s', float('nan')):.2f} s of CPU), resident memory after it "
        f"**{m['rss_mb']:.0f} MB**.",
        "",
    ]


def profile_section(profile: dict[str, Any]) -> list[str]:
    lines = [
        f"### Where the event loop's time goes: `{profile['command']}`",
        "",
        _machine(profile),
        "",
        f"{profile['samples']} samples of the thread holding the GIL, each counted under the "
        "innermost layer it was in:",
        "",
        "| layer | share |",
        "|---|---:|",
        *(f"| {name} | {share:.1%} |" for name, share in profile["layers"].items()),
        "",
        "| top functions (self time) | share |",
        "|---|---:|",
        *(f"| `{name}` | {share:.1%} |" for name, share in profile["top_functions"].items()),
        "",
    ]
    return lines


def _env(env: dict[str, str]) -> str:
    return f"`{' '.join(f'{k}={v}' for k, v in env.items())}`"


def tune_section(tune: dict[str, Any]) -> list[str]:
    lines = [
        f"### Choosing the batching defaults, {tune.get('model', 'bilstm-additive')}",
        "",
        _machine(tune),
        "",
        f"Medians of {tune.get('rounds', 3)} interleaved rounds; each setting as stated"
        + (f", every one with {_env(tune['settings'])}" if tune.get("settings") else "")
        + ":",
        "",
        *(
            f"- {name}: " + (_env(env) if env else "the service's defaults when it ran")
            for name, env in tune["variants"].items()
        ),
        "",
        "| scenario | setting | sentences/s | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for scenario, variants in tune["medians"].items():
        for name, m in variants.items():
            lines.append(
                f"| {scenario} | {name} | {m['sentences_per_s']:.0f} | {m['p50_ms']:.2f} "
                f"| {m['p99_ms']:.2f} |"
            )
    return [*lines, ""]


def encoder_goal_rows(http: dict[str, Any]) -> list[str]:
    """The pretrained encoder's goals: 1 connection p50 ≤ 2.5 ms; at 32 connections ≥ 2x
    plain's requests/s and p99 ≤ plain's; 64-text requests ≥ 1.5x single texts' sentences/s."""
    medians = http["medians"]
    at32 = medians[SCENARIO_32]
    p50 = medians[SCENARIO_1]["attnserve"]["p50_ms"]
    rows = [f"| 1 connection, {http['model']}: p50 ≤ 2.5 ms | {p50:.2f} ms | {_met(p50 <= 2.5)} |"]
    for name in (n for n in medians[SCENARIO_BATCH] if n.startswith("attnserve")):
        batched = medians[SCENARIO_BATCH][name]["sentences_per_s"]
        single = at32[name]["sentences_per_s"]
        rows.append(
            f"| {http['model']}, {name}: 64-text requests ≥ 1.5x the sentences/s of single "
            f"texts at 32 connections | {batched / single:.2f}x ({batched:.0f} vs {single:.0f}) "
            f"| {_met(batched >= 1.5 * single)} |"
        )
    for name in (n for n in at32 if n.startswith("attnserve")):
        # the plain server with as many workers, where it ran so
        plain = at32.get(_with_workers_of("plain", name), at32["plain"])
        times = at32[name]["requests_per_s"] / plain["requests_per_s"]
        p99, plain_p99 = at32[name]["p99_ms"], plain["p99_ms"]
        rows += [
            f"| 32 connections, {http['model']}, {name}: ≥ 2x the plain server with as many "
            f"workers | {times:.2f}x "
            f"| {'met' if times >= 2 else 'missed'} |",
            f"| 32 connections, {http['model']}, {name}: p99 ≤ that plain server's "
            f"| {p99:.1f} ms vs {plain_p99:.1f} ms | {'met' if p99 <= plain_p99 else 'missed'} |",
        ]
    return rows


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def http_goal_rows(http: dict[str, Any]) -> list[str]:
    """The request path's goals, each ratio of two servers with the same worker count."""
    medians = http["medians"]
    rows = []
    for scenario in (SCENARIO_32, SCENARIO_32_TEXTS):
        at32 = medians.get(scenario)
        if at32 is None:
            continue
        for ours, floor, plain, share in (
            ("attnserve", "floor", "plain", 0.5),
            *((f"attnserve --workers {w}", f"floor --workers {w}", f"plain --workers {w}", 0.6)
              for w in _worker_counts(at32)),
        ):  # fmt: skip
            if ours not in at32 or floor not in at32:
                continue
            rate = at32[ours]["requests_per_s"]
            of_floor = rate / at32[floor]["requests_per_s"]
            rows.append(
                f"| {scenario}, {ours}: ≥ {share:.1f}x {floor} | {of_floor:.2f}x "
                f"| {_met(of_floor >= share)} |"
            )
            if plain in at32:
                of_plain = rate / at32[plain]["requests_per_s"]
                verdict = _met(of_plain >= 3)
                rows.append(f"| {scenario}, {ours}: ≥ 3x {plain} | {of_plain:.2f}x | {verdict} |")
    one = medians[SCENARIO_1]
    gap = one["attnserve"]["p50_ms"] - one["floor"]["p50_ms"]
    rows.append(
        f"| 1 connection: p50 within 0.3 ms of the floor's | {gap:+.2f} ms "
        f"({one['attnserve']['p50_ms']:.2f} vs {one['floor']['p50_ms']:.2f}) | {_met(gap <= 0.3)} |"
    )
    for name in (n for n in medians[SCENARIO_BATCH] if n.startswith("attnserve --workers")):
        rate = medians[SCENARIO_BATCH][name]["sentences_per_s"]
        rows.append(
            f"| 64-text requests, {name}: ≥ 25,000 sentences/s | {rate:.0f} "
            f"| {_met(rate >= 25000)} |"
        )
    return rows


def _worker_counts(servers: dict[str, Any]) -> list[str]:
    return sorted(
        {name.rsplit(" ", 1)[1] for name in servers if name.startswith("attnserve --workers")}
    )


def goals_section(
    http: dict[str, Any] | None,
    inprocess: dict[str, Any] | None,
    startup: dict[str, Any] | None,
    encoders: list[dict[str, Any]],
    grpc: dict[str, Any] | None,
) -> list[str]:
    rows = [] if http is None else http_goal_rows(http)
    for encoder in encoders:
        rows += encoder_goal_rows(encoder)
    if grpc is not None:
        rows += grpc_goal_rows(grpc)
    if inprocess is not None:
        by_batch = inprocess["by_batch_ms"]
        ort, torch = by_batch["onnxruntime fp32"], by_batch["pytorch eager fp32"]
        first = next(iter(ort))
        speedup = torch[first] / ort[first]
        rows.append(
            f"| in-process, batch 1: ONNX Runtime ≥ 3x PyTorch | {speedup:.2f}x "
            f"| {'met' if speedup >= 3 else 'missed'} |"
        )
        behind = [size for size in ort if ort[size] >= torch[size]]
        rows.append(
            "| in-process: ONNX Runtime ahead at every batch size | "
            + ("ahead at all" if not behind else f"behind at {', '.join(behind)}")
            + f" | {'met' if not behind else 'missed'} |"
        )
    if startup is not None:
        m = startup["medians"]
        rows.append(
            f"| cold start ≤ 1.5 s (to the first prediction) | {m['first_prediction_s']:.2f} s "
            f"({m.get('cpu_s', float('nan')):.2f} s of CPU) "
            f"| {'met' if m['first_prediction_s'] <= 1.5 else 'missed'} |"
        )
        rows.append(
            f"| resident memory ≤ 250 MB per worker | {m['rss_mb']:.0f} MB "
            f"| {'met' if m['rss_mb'] <= 250 else 'missed'} |"
        )
    return [
        "### Goals",
        "",
        "| goal | measured | |",
        "|---|---:|---|",
        *rows,
        "",
    ]


def score_file_section(results: dict[str, Any]) -> list[str]:
    medians = results["medians"]
    return [
        "### Scoring a file through a server: `attnserve predict --file`",
        "",
        _machine(results),
        "",
        f"{results['lines']} lines, each round a new `attnserve predict --url --file` process "
        f"(start-up counted), then wrk's {results['scenario']} for {results['seconds']} s on "
        "the same server; medians of the rounds (goal: the file at 0.8x or more):",
        "",
        "| | sentences/s |",
        "|---|---:|",
        f"| `attnserve predict --file` | {medians['file_sentences_per_s']:.0f} |",
        f"| {results['scenario']} | {medians['http_sentences_per_s']:.0f} |",
        f"| ratio | {results['ratio']:.2f}x |",
        "",
    ]


def render() -> str:
    http, inprocess, startup, grpc = (
        _load(name) for name in ("http", "inprocess", "startup", "grpc")
    )
    # http-NAME.json: the same scenarios with another shipped model (the pretrained encoder)
    others = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("http-*.json"))]
    encoders = [other for other in others if http is None or other["model"] != http["model"]]
    lines = [START, "", *goals_section(http, inprocess, startup, encoders, grpc)]
    for results in [http, *encoders]:
        if results is not None:
            lines += http_section(results)
    # http-granian.json: attnserve on uvicorn and on granian, `bench.http --only ...`
    granian = _load("http-granian")
    if granian is not None:
        lines += http_section(granian, f"Another ASGI server, {granian['model']}")
    if grpc is not None:
        lines += grpc_section(grpc)
    ceiling = _load("ceiling")
    if ceiling is not None:
        lines += ceiling_section(ceiling)
    if inprocess is not None:
        lines += inprocess_section(inprocess)
    if startup is not None:
        lines += startup_section(startup)
    score_file = _load("score_file")
    if score_file is not None:
        lines += score_file_section(score_file)
    for path in sorted(RESULTS.glob("profile-*.json")):
        lines += profile_section(json.loads(path.read_text()))
    for path in sorted(RESULTS.glob("tune*.json")):
        lines += tune_section(json.loads(path.read_text()))
    return "\n".join([*lines, END])


def main() -> None:
    figures = render()
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    DOC.write_text(before + figures + after)
    print(f"wrote {Path(DOC).name}")


if __name__ == "__main__":
    main()
