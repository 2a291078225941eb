"""The `attnserve` command and the offline tools it runs (evaluation, heatmaps): the top floor,
the only one that may import every other."""
