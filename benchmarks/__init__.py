"""Benchmarks of bidsmrs (run from the project root, e.g. ``python -m benchmarks.challenge``)."""
