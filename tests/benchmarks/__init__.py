"""The benchmarks/*.py scripts: the paper table, the sizing plan, seed spread and the diverse-reasoning campaign."""
