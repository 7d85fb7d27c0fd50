"""What a teacher needs besides lm-eval: the typed teacher spec, its server checks, the response cache (the
ledger of what was paid for), accounting, and reasoning-model traces.
"""
