"""Dataset and model cards (with ``model-index`` results) for the Hub and for local folders alike.

Cards are rendered from the Jinja templates in ``templates/`` with ``huggingface_hub``'s
``DatasetCard``/``ModelCard.from_template``, their metadata held by ``DatasetCardData``/``ModelCardData`` and
results by ``EvalResult``, so the Hub renders base model, datasets and eval results natively.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import (
    DatasetCard,
    DatasetCardData,
    EvalResult,
    ModelCard,
    ModelCardData,
)

from fcot_plugin.tasks.answer_types import get_answer_type
from fcot_plugin.tasks.names import student_task, task_name
from fcot_plugin.tasks.prompts import DEFAULT_ANSWER_TRIGGER, teacher_stage1
from fcot_plugin.tasks.registry import get_task, read_task_folder
from fcot_plugin.teacher.accounting import accounting_markdown

PAPER = "Large Language Models Are Reasoning Teachers (Ho, Schmid, Yun, ACL 2023)"
PAPER_URL = "https://arxiv.org/abs/2212.10071"
CITATION = """@inproceedings{ho2023large,
  title={Large Language Models Are Reasoning Teachers},
  author={Ho, Namgyu and Schmid, Laura and Yun, Se-Young},
  booktitle={Proceedings of the 61st Annual Meeting of the Association for Computational Linguistics},
  year={2023}
}"""


# ---------------------------------------------------------------------- provenance

LICENSE_NOTE = "`other`: the source states no license fcot could read; check the source's terms before sharing"
SHIPPED_LICENSES = "each shipped dataset keeps its own license (fcot_plugin/data/SOURCES.md)"


def package_versions() -> dict[str, str]:
    """The versions of the libraries that made the data and the student."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("fcot", "lm_eval", "trl", "transformers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def provenance(summary: dict[str, Any]) -> dict[str, Any]:
    """Where a curated dataset came from, for both cards' metadata (``fcot:``) and prose.

    ``summary`` is ``curation_summary``'s: the source, its revision or file hash, fields and answer type (a task
    of the user's own) or the shipped split; the teacher, prompt and trigger, D and T; kept and rejected counts and
    the test-split overlap removed; library versions.
    """
    spec = get_task(summary["task"])
    answer_type = get_answer_type(spec.answer_type)
    if spec.folder:
        source = read_task_folder(spec.folder)["provenance"]
    else:
        source = {"dataset": f"fcot shipped data: the paper's {spec.title} split", "answer_type": spec.answer_type}
    stats, teacher = summary.get("stats", {}), summary.get("teacher", {})
    return {
        "source": source,
        "license": source.get("license") or "other",
        "teacher": teacher.get("name"),
        "teacher_weights": teacher.get("weights"),
        "prompt_template": teacher_stage1("{question}"),
        "answer_trigger": used_trigger(teacher.get("name") or "", answer_type.trigger),
        "samples_per_question": teacher.get("samples_per_question"),
        "temperature": teacher.get("temperature"),
        "kept": stats.get("rows"),
        "rejected": stats.get("rationales", 0) - stats.get("correct", 0),
        "overlap_removed": stats.get("overlap", 0),
        "versions": package_versions(),
    }


def used_trigger(teacher: str, typed: str) -> str:
    """The answer trigger a teacher's rationales were asked with, read from its recorded model args."""
    match = re.search(r"answer_trigger=([^,)]*)", teacher)
    if match is None:
        return "each rationale's own (released with it)" if "davinci" in teacher else DEFAULT_ANSWER_TRIGGER.strip()
    return typed if match.group(1) == "typed" else match.group(1).replace("\\n", "").strip()


def license_note(record: dict[str, Any], shipped: bool) -> str:
    if shipped:
        return SHIPPED_LICENSES
    return f"`{record['license']}` (from the source)" if record["license"] != "other" else LICENSE_NOTE


def weights_line(weights: dict[str, Any] | None) -> str | None:
    """The file an embedded teacher was served from, with its hash and license (None for any other teacher)."""
    if not weights:
        return None
    file = Path(weights["file"]).name  # the name only: a card is public, the cache path is this machine's
    sha256 = weights["gguf_sha256"]
    return f"{weights['model']} ({weights['license']}): `{file}`, GGUF SHA-256 `{sha256}` ({weights['source']})"


def provenance_markdown(record: dict[str, Any], shipped: bool) -> str:
    """The provenance table both cards show."""
    source = record["source"]
    revision = source.get("revision") or source.get("sha256")
    fields = source.get("fields") or {}
    rows = [
        ("source", f"`{source['dataset']}`" + (f" (config `{source['config']}`)" if source.get("config") else "")),
        ("revision" if source.get("revision") else "file hash (sha256)", f"`{revision}`" if revision else None),
        ("fields", ", ".join(f"{key}: `{value}`" for key, value in fields.items() if value) or None),
        ("answer type", f"`{source.get('answer_type')}`"),
        ("test split", source.get("test")),
        ("license", license_note(record, shipped)),
        ("teacher", f"`{record['teacher']}`" if record["teacher"] else None),
        ("teacher weights", weights_line(record.get("teacher_weights"))),
        ("prompt template", f"`{record['prompt_template']!r}`"),
        ("answer trigger", record["answer_trigger"]),
        ("D, T", f"{record['samples_per_question']}, {record['temperature']}"),
        ("rationales kept / rejected", f"{record['kept']} / {record['rejected']}"),
        ("test-split overlap", f"{record['overlap_removed']} rows overlapping the test split removed"),
        ("versions", ", ".join(f"{name} {value}" for name, value in record["versions"].items())),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {key} | {value} |" for key, value in rows if value is not None)


def curated_summary(dataset: str) -> dict[str, Any] | None:
    """The curation summary a dataset folder of ``fcot curate`` holds (``fcot_curation.json``), if local."""
    path = Path(dataset).expanduser() / "fcot_curation.json"
    if not path.is_file():
        return None
    import json

    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------- datasets


def _template(name: str) -> str:
    return str(resources.files("fcot_plugin") / "templates" / name)


def dataset_card(summary: dict[str, Any]) -> DatasetCard:
    """The card of a curated dataset, from ``curate.curation_summary`` (task, format, teacher, stats)."""
    spec = get_task(summary["task"])
    record = provenance(summary)
    data = DatasetCardData(
        language=["en"],
        license=record["license"],
        fcot=record,
        task_categories=["text-generation"],
        tags=["fine-tune-cot", "chain-of-thought", "distillation", f"fcot-{summary['task']}"],
        pretty_name=f"Fine-tune-CoT {spec.title} ({summary['format']})",
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
    )
    vanilla = summary["format"] == "vanilla"
    return DatasetCard.from_template(
        data,
        template_path=_template("dataset_card.md"),
        title=spec.title,
        task=summary["task"],
        lm_eval_task=student_task(summary["task"], summary["format"]),
        format_text="`{question} ###` → ` {answer}` + EOS (vanilla fine-tuning baseline: gold answers only)"
        if vanilla
        else "`{question} ###` → ` {rationale} --> {answer}` + EOS (Fine-tune-CoT)",
        teacher_text="none (gold answers)" if vanilla else summary["teacher"]["name"],
        teacher=summary["teacher"],
        teacher_accounting=accounting_markdown(summary["teacher"]["accounting"])
        if summary["teacher"].get("accounting")
        else None,
        stats=summary["stats"],
        provenance=provenance_markdown(record, shipped=spec.folder is None),
        split_text=f"the train split of `{record['source']['dataset']}`"
        if spec.folder
        else f"the paper's {spec.title} train split",
        paper=PAPER,
        paper_url=PAPER_URL,
        citation=CITATION,
    )


# ---------------------------------------------------------------------- models


def eval_result(task: str, accuracy: float, limit: int | None = None, dataset_format: str = "fcot") -> EvalResult:
    """One ``model-index`` entry: accuracy on the paper's test split of ``task`` (or its first ``limit`` rows),
    named by the lm-eval task that scored it (``fcot_<task>``, or ``fcot_<task>_vanilla`` for a vanilla student)."""
    spec = get_task(task)
    subset = f" (first {limit} questions)" if limit else ""
    dataset_type, dataset_name = f"fcot/{task}", f"{spec.title} (Fine-tune-CoT test split)"
    revision = None
    if spec.folder:  # the user's own dataset: its Hub id or file, and the lm-eval task that holds its test split
        source = read_task_folder(spec.folder)["provenance"]
        dataset_type = source["dataset"] if source.get("revision") is not None else task_name(task)
        dataset_name = f"{Path(source['dataset']).name} ({source.get('test', 'test split')})"
        revision = source.get("revision")
    return EvalResult(
        task_type="text-generation",
        task_name="Chain-of-thought reasoning",
        dataset_type=dataset_type,
        dataset_name=dataset_name,
        dataset_revision=revision,
        dataset_split="test",
        metric_type="accuracy",
        metric_value=round(float(accuracy), 4),
        metric_name=f"{student_task(task, dataset_format)} acc{subset}",
    )


EVALUATION_HEADING = "## Evaluation (lm-evaluation-harness, `fcot` plugin, greedy, no chat template)"


def evaluation_section(
    eval_results: list[EvalResult] | None, model_name: str, task: str, dataset_format: str = "fcot"
) -> str:
    """The card's evaluation section: one table row per ``model-index`` entry, or how to add one."""
    if not eval_results:
        vanilla = f" --dataset_format {dataset_format}" if dataset_format != "fcot" else ""
        task = get_task(task).folder or task  # a task of your own is named by its folder
        return (
            f"{EVALUATION_HEADING}\n\nNot evaluated yet: `fcot evaluate --model {model_name} --task {task}{vanilla}` "
            f"adds the results."
        )
    rows = "\n".join(f"| `{r.metric_name}` | {r.dataset_split} | {r.metric_value:.4f} |" for r in eval_results)
    return f"{EVALUATION_HEADING}\n\n| metric | split | value |\n|---|---|---|\n{rows}"


def model_card(
    *,
    model_name: str,
    base_model: str,
    task: str,
    dataset: str,
    dataset_format: str,
    hyperparameters: dict[str, Any],
    eval_results: list[EvalResult] | None = None,
    architecture: str = "decoder-only",
    lora: dict[str, Any] | None = None,
) -> ModelCard:
    """A student's card: architecture, base model, training data and format, hyper-parameters and fcot results.

    ``architecture`` is e.g. ``T5ForConditionalGeneration (encoder-decoder)``; an encoder-decoder student was
    trained with ``Seq2SeqTrainer``. ``lora`` (the LoRA settings) makes it an adapter card: peft library, usage
    through ``pretrained=<base>,peft=<adapter>``.
    """
    encoder_decoder = "encoder-decoder" in architecture
    trainer_tags = ["seq2seq"] if encoder_decoder else ["trl", "sft"]
    summary = curated_summary(dataset)
    record = provenance(summary) if summary else None
    data = ModelCardData(
        license=record["license"] if record else "other",
        **({"fcot": record} if record else {}),
        model_name=model_name,
        base_model=base_model,
        datasets=[dataset] if "/" in dataset and not Path(dataset).exists() else None,
        library_name="peft" if lora else "transformers",
        pipeline_tag="text2text-generation" if encoder_decoder else "text-generation",
        tags=[
            "fine-tune-cot",
            "chain-of-thought",
            "distillation",
            *trainer_tags,
            *(["lora"] if lora else []),
            f"fcot-{task}",
        ],
        eval_results=eval_results or None,
    )
    fcot = dataset_format == "fcot"
    return ModelCard.from_template(
        data,
        template_path=_template("model_card.md"),
        title=get_task(task).title,
        task=task,
        dataset=dataset,
        dataset_format=dataset_format,
        method="Fine-tune-CoT" if fcot else "vanilla fine-tuning",
        completion_format="` {rationale} --> {answer}`" if fcot else "` {answer}`",
        evaluation_section=evaluation_section(eval_results, model_name, task, dataset_format),
        lm_eval_task=student_task(task, dataset_format),
        include_path=get_task(task).folder,  # a task of your own: lm-eval reads its folder
        hyperparameters=hyperparameters,
        architecture=architecture,
        encoder_decoder=encoder_decoder,
        lora=lora,
        provenance=provenance_markdown(record, shipped=get_task(task).folder is None) if record else None,
        license_text=license_note(record, get_task(task).folder is None) if record else LICENSE_NOTE,
        paper=PAPER,
        paper_url=PAPER_URL,
        citation=CITATION,
    )


def with_eval_result(card: ModelCard, result: EvalResult, task: str, dataset_format: str = "fcot") -> ModelCard:
    """``card`` with ``result`` added to its ``model-index`` (replacing one of the same metric) and body table.

    Works on any model card: one without fcot's evaluation section gets it appended. The whole card is
    rewritten rather than ``metadata_update``-d, because ``metadata_update`` changes only the YAML header and
    would leave the card's results table stale; the push is still one commit.
    """
    kept = [r for r in (card.data.eval_results or []) if r.metric_name != result.metric_name]
    card.data.eval_results = [*kept, result]
    card.data.model_name = card.data.model_name or "model"
    section = evaluation_section(card.data.eval_results, card.data.model_name, task, dataset_format)
    text = card.text
    if EVALUATION_HEADING in text:
        before, after = text.split(EVALUATION_HEADING, 1)
        _, heading, rest = after.partition("\n## ")
        text = f"{before}{section}\n{heading}{rest}" if heading else f"{before}{section}\n"
    else:
        text = f"{text.rstrip()}\n\n{section}\n"
    return ModelCard(f"---\n{card.data.to_yaml()}\n---\n{text}")
