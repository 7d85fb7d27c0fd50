"""Curation: teacher samples to a prompt/completion dataset, with every rationale's decision recorded."""
