"""Tiny local causal LMs for the tests: no download, seconds to build.

A byte-level BPE tokenizer is trained on the shipped questions and a 2-layer Llama is initialised from a
fixed seed, so every test that runs lm-eval, the tokenizer or the trainer does so for real.
"""

from __future__ import annotations

from pathlib import Path

from fcot_plugin.tasks.registry import load_rows

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]


def build_tokenizer(vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        row["question"]
        for task in ("multiarith", "coin_flip", "last_letter_concatenation")
        for row in load_rows(task, "train")
    ]
    corpus += [" Therefore, the answer is --> ### Let's think step by step. yes no 0123456789"] * 20
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", model_max_length=1024
    )


def build_tiny_llama(path: Path, seed: int = 0, tie_word_embeddings: bool = True) -> Path:
    """Save a tokenizer and a randomly initialised 2-layer Llama to ``path``; return ``path``.

    Tied embeddings make a random model repeat its last token; untied, its greedy text wanders over the vocabulary.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=tie_word_embeddings,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_t5(path: Path, seed: int = 0) -> Path:
    """Save the same tokenizer and a randomly initialised 2+2-layer T5 (encoder-decoder) to ``path``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = build_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,  # as T5 does
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
