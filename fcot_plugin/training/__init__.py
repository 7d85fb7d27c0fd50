"""Student SFT behind ``recipes/sft.py``: TRL's ``SFTTrainer`` (decoder-only) and transformers' ``Seq2SeqTrainer``
(T5), with the student's loading, LoRA and checkpoint handling.
"""
