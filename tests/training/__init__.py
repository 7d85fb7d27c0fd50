"""Student SFT: the recipe, LoRA and model options, T5 students, accelerate configs, the fast path, the student."""
