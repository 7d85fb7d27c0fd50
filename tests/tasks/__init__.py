"""The tasks: the paper's datasets and answer rules, every task through lm-eval, and a user's own data as a task."""
