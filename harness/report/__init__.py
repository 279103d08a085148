"""Results: the paper's tables (CSV, LaTeX, Markdown), per-round plots and projector export (SPEC 7)."""
