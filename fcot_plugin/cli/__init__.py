"""The console scripts on top of everything: ``fcot`` and ``fcot-eval``."""
