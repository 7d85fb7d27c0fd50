"""``fcot distill`` and ``fcot evaluate``: the settings, the resumable run folder, preflight checks, epoch selection,
the report."""
