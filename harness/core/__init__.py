"""The foundations every other layer builds on: plain types, the method spec, the run folder. Nothing
here imports the engine, the features or the app (tests/unit/test_layering.py)."""
