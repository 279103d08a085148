"""Benchmarks of the harness (run them all with ``make bench`` = ``python -m perf.run``).

Each benchmark is a module with ``main(argv) -> int`` that understands ``--quick`` and ``--out DIR``
and writes ``DIR/<name>.csv`` and ``DIR/<name>.md``; :mod:`perf.run` lists them.
"""
