"""The benchmark harness behind ``make bench`` (DESIGN.md, "Performance bar").

``python -m bench`` runs every benchmark in :mod:`bench.registry` and prints one table;
``python -m bench NAME...`` runs some of them. Each benchmark is a function returning
:class:`~bench.rows.Row` objects: one figure each, with the bar it is held to and, where one exists,
the figure of a peer run in the same process (a bare loop, a plain query, a plain onnxruntime
session...) so the ratio says how much overhead tagtrain adds on whatever machine runs it.

To add one: write ``bench/<thing>.py`` with ``def run() -> list[Row]`` and add one line to
:data:`bench.registry.BENCHMARKS`. Modules are imported only when their benchmark runs, so a
benchmark that imports torch costs nothing to the others.
"""
