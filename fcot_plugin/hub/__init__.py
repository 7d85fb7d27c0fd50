"""The Hugging Face Hub: dataset and model cards, token checks and pushes."""
