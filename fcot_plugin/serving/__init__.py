"""Model servers fcot runs on this machine for the length of a run: one module per engine (vLLM,
``transformers serve``, llama.cpp), the process lifecycle they share (free port, start-up progress, a watchdog,
no process left on any exit path), and vLLM's in-place weight swaps. Nothing here knows about teaching or
scoring; ``teacher/`` and ``pipeline/`` decide what to serve.
"""
