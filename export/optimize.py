"""Offline graph optimisation: ONNX Runtime's optimised graph, saved as the artifact's model.

ONNX Runtime optimises every graph when it opens a session; doing it once at export moves
that work out of startup. `extended` fusions are portable across CPUs (ONNX Runtime does not
promise that for `all`, whose layout changes are machine-specific), and the service still
applies the remaining ones at load. The optimised graph then goes through the same parity
check against PyTorch as any export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

# The command line offers these as choices: importing them must not import ONNX Runtime.
OptimizationLevel = Literal["basic", "extended"]


def optimize_graph(source: Path, target: Path, level: OptimizationLevel = "extended") -> None:
    """Writes `target`, the graph ONNX Runtime makes of `source` at `level` on CPU."""
    import onnxruntime as ort

    levels = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[level]
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    if not target.is_file():
        raise RuntimeError(f"ONNX Runtime did not write the optimised graph to {target}")


def fuse_transformer(source: Path, target: Path, *, heads: int, hidden: int) -> dict[str, int]:
    """Writes `target`, `source` rewritten by ONNX Runtime's transformer optimiser (BERT
    fusions: Attention, SkipLayerNormalization, BiasGelu, ...), without ONNX Runtime's own
    graph optimisations (the service applies those at load); returns how many of each fused
    operator it made."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(source), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
    )
    fused.save_model_to_file(str(target))
    counts: dict[str, int] = fused.get_fused_operator_statistics()
    return {name: count for name, count in counts.items() if count}


def describe(level: OptimizationLevel) -> str:
    """What the manifest records about an optimised graph."""
    return f"ONNX Runtime offline graph optimisation, level {level}, CPU"
