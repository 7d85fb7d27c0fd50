"""fcot inside lm-evaluation-harness: the models (``zscot``, ``hf-regroup``), the task YAMLs' ``!function`` hooks,
plugin discovery for plain ``lm_eval``, and the in-process runner the other commands score with."""
