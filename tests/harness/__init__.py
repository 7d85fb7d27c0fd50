"""fcot's lm-eval models: zscot's two stages and its response cache, hf-regroup, the baselines, reasoning teachers."""
