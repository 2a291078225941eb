"""The artifact: the contract between export (which writes it) and the service (which reads it).

A model directory's manifest, the tokenizer with character offsets, the graph's input and
output names, and the labelled data with its recorded split. Imports nothing of ours.
"""
