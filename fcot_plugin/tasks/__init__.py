"""The 12 datasets and the paper's exact strings: registry, prompts, answer rules, formats, task names, results.

Free of lm-eval and torch, so the task YAMLs' hooks and the commands' ``--help`` stay fast. Imports only ``core``.
"""
