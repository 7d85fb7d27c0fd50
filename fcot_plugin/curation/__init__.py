"""Teacher responses -> Fine-tune-CoT training data: read teacher samples or the paper's rationales, keep the
correct ones, write prompt/completion rows with a dataset card.
"""
