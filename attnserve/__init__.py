"""attnserve: sentiment of text over HTTP, with the per-token attention behind each prediction.

One import namespace over the project's floors, each a top-level folder of the repository
(linked here; the wheel carries them as these subpackages):

    attnserve.cli       the `attnserve` commands and offline tools; may import every floor
    attnserve.export    PyTorch -> ONNX: writes the artifact
    attnserve.service   FastAPI + ONNX Runtime, never torch     | service and models never
    attnserve.models    PyTorch architectures and training      | import each other
    attnserve.artifact  the contract both sides read: manifest, tokenizer, data split

Each floor imports only the floors below it (`lint-imports` checks it; pyproject.toml).
"""
