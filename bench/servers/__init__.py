"""Reference servers the benchmark compares attnserve with; each is `create_app()` for uvicorn."""
