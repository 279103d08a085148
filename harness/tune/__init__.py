"""Equal tuning budgets (``fedma tune``): every method's declared space, the same number of Optuna trials,
tuning seeds, a validation split; the chosen values as a config a sweep extends."""
