"""Benchmarks for microasgi: in-process, routing and end-to-end (run with ``nox -s bench``)."""
