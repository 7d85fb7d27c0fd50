"""fcot: Fine-tune-CoT ("Large Language Models Are Reasoning Teachers", Ho et al., ACL 2023).

An lm-evaluation-harness plugin (tasks ``fcot_*``, the ``zscot`` model) plus curation, TRL training
recipes and Hub publishing. Import submodules directly; this package stays light so ``--help`` is fast.
"""

__version__ = "0.1.0"
