"""fcot distill: the stages, the run folder, the settings that feed them, epoch selection and the report."""
