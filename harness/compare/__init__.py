"""Paired comparisons of methods (``fedma compare``): summaries of per-round curves, exact sign-flip
permutation p, bootstrap intervals, Holm and Benjamini-Hochberg adjustment (SPEC section 7)."""
