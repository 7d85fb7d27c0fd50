"""Hugging Face Hub: dataset and model cards (with ``model-index`` results), token checks and pushes.

Cards are built with ``huggingface_hub``'s ``DatasetCard``/``ModelCard`` so the Hub renders their
metadata (base model, datasets, eval results) natively.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, HfApi, ModelCard, ModelCardData

from fcot_plugin.tasks import get_task

if TYPE_CHECKING:
    from fcot_plugin.curate import CurationResult

PAPER = "Large Language Models Are Reasoning Teachers (Ho, Schmid, Yun, ACL 2023)"
PAPER_URL = "https://arxiv.org/abs/2212.10071"
CITATION = """@inproceedings{ho2023large,
  title={Large Language Models Are Reasoning Teachers},
  author={Ho, Namgyu and Schmid, Laura and Yun, Se-Young},
  booktitle={Proceedings of the 61st Annual Meeting of the Association for Computational Linguistics},
  year={2023}
}"""


class HubError(RuntimeError):
    """A Hub operation that cannot go ahead; the message says how to fix it."""


def require_hub_token(token: str | None = None) -> str:
    """The user name behind the token, or a clear error before anything is trained or written."""
    try:
        return HfApi(token=token).whoami()["name"]
    except Exception as error:  # no token, a bad token, or an unreachable Hub: the fix is the same
        raise HubError(
            f"pushing to the Hub needs a valid token ({type(error).__name__}: {error}). Log in with "
            f"`hf auth login` or set HF_TOKEN, or turn off push_to_hub"
        ) from None


# ---------------------------------------------------------------------- datasets


def dataset_card(result: CurationResult) -> DatasetCard:
    spec = get_task(result.task)
    stats, teacher = result.stats, result.teacher
    data = DatasetCardData(
        language=["en"],
        task_categories=["text-generation"],
        tags=["fine-tune-cot", "chain-of-thought", "distillation", f"fcot-{result.task}"],
        pretty_name=f"Fine-tune-CoT {spec.title} ({result.format})",
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
    )
    if result.format == "vanilla":
        format_text = "`{question} ###` → ` {answer}` + EOS (vanilla fine-tuning baseline: gold answers only)"
        teacher_text = "none (gold answers)"
    else:
        format_text = "`{question} ###` → ` {rationale} --> {answer}` + EOS (Fine-tune-CoT)"
        teacher_text = teacher.name
    unknown = "unknown"
    samples = unknown if teacher.samples_per_question is None else teacher.samples_per_question
    temperature = unknown if teacher.temperature is None else teacher.temperature
    body = f"""---
{data.to_yaml()}
---

# Fine-tune-CoT training data: {spec.title}

Student fine-tuning data in the format of [{PAPER}]({PAPER_URL}), curated with
the `fcot` package (`fcot curate`) from teacher rationales on the paper's {spec.title} train split.

| | |
|---|---|
| task | `{result.task}` (lm-eval: `fcot_{result.task}`) |
| format | {format_text} |
| teacher | {teacher_text} |
| samples per question (D) | {samples} |
| teacher temperature (T) | {temperature} |
| train questions seen | {stats.questions} |
| teacher rationales | {stats.rationales} |
| correct rationales | {stats.correct} (filter rate {stats.filter_rate:.2%}) |
| duplicates removed | {stats.duplicates} |
| rows | {stats.rows} (covering {stats.questions_covered} questions) |

Columns: `prompt`, `completion` (TRL prompt-completion format; the trainer appends EOS) and `sample_index`
(the question's index in the paper's dataset). Rationales are kept only when their final answer is correct
under the paper's answer rules.

## Citation

```bibtex
{CITATION}
```
"""
    return DatasetCard(body)


def push_dataset(path: str | Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Push a dataset folder written by ``fcot curate`` (data + card) to the Hub; returns its URL."""
    import datasets

    require_hub_token(token)
    path = Path(path)
    dataset = datasets.load_from_disk(str(path))
    dataset.push_to_hub(repo_id, token=token, private=private, commit_message="Add Fine-tune-CoT data")
    DatasetCard.load(path / "README.md").push_to_hub(repo_id, repo_type="dataset", token=token)
    return f"{HfApi(token=token).endpoint}/datasets/{repo_id}"


# ---------------------------------------------------------------------- models


def eval_result(task: str, accuracy: float, limit: int | None = None) -> EvalResult:
    """One ``model-index`` entry: accuracy on the paper's test split of ``task`` (or its first ``limit`` rows)."""
    spec = get_task(task)
    subset = f" (first {limit} questions)" if limit else ""
    return EvalResult(
        task_type="text-generation",
        task_name="Chain-of-thought reasoning",
        dataset_type=f"fcot/{task}",
        dataset_name=f"{spec.title} (Fine-tune-CoT test split)",
        dataset_split="test",
        metric_type="accuracy",
        metric_value=round(float(accuracy), 4),
        metric_name=f"fcot_{task} acc{subset}",
    )


def results_table(eval_results: list[EvalResult]) -> str:
    """The markdown table of a card's results, one row per ``model-index`` entry."""
    rows = "\n".join(f"| `{r.metric_name}` | {r.dataset_split} | {r.metric_value:.4f} |" for r in eval_results)
    return f"| metric | split | value |\n|---|---|---|\n{rows}"


def model_card(
    *,
    model_name: str,
    base_model: str,
    task: str,
    dataset: str,
    dataset_format: str,
    hyperparameters: dict[str, Any],
    eval_results: list[EvalResult] | None = None,
) -> ModelCard:
    """A student's card: base model, training data and format, hyper-parameters and fcot results."""
    spec = get_task(task)
    data = ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=[dataset] if "/" in dataset and not Path(dataset).exists() else None,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=["fine-tune-cot", "chain-of-thought", "distillation", "trl", "sft", f"fcot-{task}"],
        eval_results=eval_results or None,
    )
    rows = "\n".join(f"| `{key}` | `{value}` |" for key, value in hyperparameters.items())
    if eval_results:
        results_text = results_table(eval_results)
    else:
        results_text = f"Not evaluated yet: `fcot evaluate --model {model_name} --task {task}` adds the results."
    prompt_format = "` {rationale} --> {answer}`" if dataset_format == "fcot" else "` {answer}`"
    body = f"""---
{data.to_yaml()}
---

# {model_name}

A {spec.title} student trained with {"Fine-tune-CoT" if dataset_format == "fcot" else "vanilla fine-tuning"}
([{PAPER}]({PAPER_URL})) from `{base_model}` on `{dataset}`.

## Use

Prompt with `{{question}} ###`; the model writes {prompt_format} and stops.

```bash
lm_eval --model hf --model_args pretrained={model_name} \\
        --include_path "$(python -m fcot_plugin.task_dir)" --tasks fcot_{task}
```

```python
from transformers import pipeline
generate = pipeline("text-generation", model="{model_name}")
print(generate("<question> ###", max_new_tokens=256, do_sample=False)[0]["generated_text"])
```

## Evaluation (lm-evaluation-harness, `fcot` plugin, greedy, no chat template)

{results_text}

## Training

TRL `SFTTrainer`, completion-only loss, format `{dataset_format}`.

| hyper-parameter | value |
|---|---|
{rows}

## Citation

```bibtex
{CITATION}
```
"""
    return ModelCard(body)
