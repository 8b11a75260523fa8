"""Measurements of dsarbot (run as scripts: `python -m bench.<name>`)."""
