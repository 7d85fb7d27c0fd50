"""The names of the lm-eval models fcot registers, for code that must name one without importing it (torch)."""

#: Kojima's two-stage zero-shot-CoT around any lm-eval model (:mod:`fcot_plugin.harness.zscot`)
ZSCOT = "zscot"
#: The lm-eval model fcot generates with from a local or Hub checkpoint: lm-eval's ``hf``, regrouping unfinished
#: answers every few tokens (:mod:`fcot_plugin.harness.hf_regroup`); same answers, less time on finished rows.
LOCAL_MODEL = "hf-regroup"
