"""Every ``fcot distill`` setting is declared once, with what it feeds; changing it re-runs exactly those stages.

The table below is written by hand, apart from the declarations in ``pipeline/settings.py``: a new setting without
its row fails here, and so does a declaration that re-runs more (or less) than the row says. The runs are real
``Run.stage`` calls on a run folder, with stage work that writes a small output made of what the stage read (its
settings and its inputs' content), as a real stage's output would change with them.
"""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from fcot_plugin.core.command_line import FCOT_METADATA
from fcot_plugin.pipeline.distill import Run
from fcot_plugin.pipeline.run_folder import STAGE_OUTPUTS
from fcot_plugin.pipeline.settings import BASELINES, STAGES, DistillArguments, Feeds, feeds_of
from fcot_plugin.pipeline.stages import STAGE_INPUTS, baseline_settings, outputs_digest, stage_settings

TEACHER = "pretrained=teacher-a"
# setting -> (another value, what it feeds directly). Later stages follow through their inputs.
EXPECTED = {
    "task": ("last_letter_concatenation", {"teacher", "curate", "report", BASELINES}),
    "teacher": ("pretrained=teacher-b", {"teacher", "report"}),
    "teacher_engine": ("vllm", {"teacher", "report"}),
    "diverse": (2, {"teacher", "report"}),
    "teacher_temperature": (0.5, {"teacher", "report"}),
    "teacher_max_gen_toks": (64, {"teacher"}),
    "train_limit": (8, {"teacher", "curate"}),
    "add_paper_rationales": (True, {"curate", "report"}),
    "dataset_format": ("vanilla", {"curate", "train", "evaluate", "report"}),
    "validation_size": (0.2, {"curate"}),
    "validation_seed": (1, {"curate"}),
    "student": ("student-b", {"train", "evaluate", "report", BASELINES}),
    "epochs": (2.0, {"train"}),
    "learning_rate": (1e-4, {"train"}),
    "batch_size": (4, {"train"}),
    "train_sampling_strategy": ("random", {"train"}),
    "lora": (True, {"train", "evaluate"}),
    "precision": ("bf16", {"train", "evaluate", BASELINES}),
    "seed": (7, {"train"}),
    "eval_limit": (5, {"evaluate", "report", BASELINES}),
    "max_gen_toks": (32, {"evaluate"}),
    "baselines": (False, {"evaluate"}),
    "eval_engine": ("vllm", {"evaluate", BASELINES}),
    "push_to_hub": (True, {"push"}),
    "hub_model_id": ("my-org/student", {"push"}),
    "hub_dataset_id": ("my-org/data", {"push"}),
    # a dataset of the user's own (--dataset): its questions, answers and rule feed every stage but training's
    **{
        name: (value, {"teacher", "curate", "evaluate", "report", BASELINES})
        for name, value in (
            ("dataset", "mine.csv"),
            ("answer_type", "number"),
            ("name", "mine"),
            ("question_field", "q"),
            ("answer_field", "a"),
            ("choices_field", "options"),
            ("dataset_config", "main"),
            ("dataset_split", "all"),
            ("test_split", "test"),
            ("test_size", 0.3),
            ("test_seed", 1),
        )
    },
    # operational: where and how a stage runs, never what it produces
    "eval_batch_size": (16, set()),
    "device": ("cuda", set()),
    "launcher": ("accelerate", set()),
    "accelerate_config": ("ds_configs/zero3.yaml", set()),
    "num_processes": (2, set()),
    "vllm_server_args": ("--gpu-memory-utilization 0.3", set()),
    # these two name what is re-run rather than feed a stage: another folder, or every stage on request
    "run_dir": ("elsewhere", set()),
    "restart": (True, set()),
}


def base_args(tmp_path) -> DistillArguments:
    return DistillArguments(
        task="coin_flip",
        teacher=TEACHER,
        student="student-a",
        run_dir=str(tmp_path / "run"),
        validation_size=0,
        precision="fp32",
        device="cpu",
    )


def run_every_stage(args: DistillArguments, *, fixed_outputs: bool = False) -> set[str]:
    """Run all stages; returns the stages that ran (were not reused). Each writes what it read, unless
    ``fixed_outputs``: then a stage that runs again writes what it wrote before."""
    run = Run(args)
    run.folder.stages_dir.mkdir(parents=True, exist_ok=True)
    ran: set[str] = set()

    def work(stage: str) -> dict:
        ran.add(stage)
        read = [stage_settings(stage, run.settings), [outputs_digest(run.folder, s) for s in STAGE_INPUTS[stage]]]
        for name in STAGE_OUTPUTS[stage][:1]:
            (run.folder.path / name).write_text(f"{stage}\n" if fixed_outputs else json.dumps(read, sort_keys=True))
        return {}

    for number, stage in enumerate(STAGES, 1):
        run.stage(number, stage, lambda stage=stage: work(stage))
    return ran


def downstream(direct: set[str]) -> set[str]:
    """The stages that re-run when ``direct`` do: every stage reading a re-run stage's outputs, transitively."""
    closed = {stage for stage in direct if stage in STAGES}
    changed = True
    while changed:
        changed = False
        for stage, inputs in STAGE_INPUTS.items():
            if stage not in closed and closed & set(inputs):
                closed.add(stage)
                changed = True
    return closed


def test_every_setting_is_declared_with_what_it_feeds():
    declared = feeds_of(DistillArguments)  # KeyError for a field made without setting(..., feeds=...)
    assert set(declared) == set(EXPECTED), "add the new setting to EXPECTED with what it feeds"
    for name, feeds in declared.items():
        assert isinstance(feeds, Feeds)
        assert set(feeds.stages) <= set(STAGES), name
        for stage, setting_name in feeds.when:
            assert stage in STAGES and setting_name in declared, name


def test_recipe_keys_are_options_of_the_sft_recipe():
    from trl import ModelConfig

    from fcot_plugin.training.config import FcotScriptArguments, FcotSFTConfig

    recipe = {item.name for config in (FcotScriptArguments, FcotSFTConfig, ModelConfig) for item in fields(config)}
    for name, feeds in feeds_of(DistillArguments).items():
        assert feeds.recipe_key is None or feeds.recipe_key in recipe, name
        if feeds.recipe_key:
            assert "train" in feeds.stages or feeds.recipe_key == "task", f"{name} reaches train.yaml"


def test_argparse_sees_only_the_help(tmp_path):
    from fcot_plugin.core.command_line import settings_parser

    parser = settings_parser(DistillArguments)
    (args,) = parser.parse_args_into_dataclasses(
        ["--task", "coin_flip", "--device", "cpu", "--teacher_max_gen_toks", "9"]
    )
    assert args.teacher_max_gen_toks == 9
    assert all(FCOT_METADATA not in vars(action) for action in parser._actions)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_changing_a_setting_reruns_exactly_its_stages(name, tmp_path):
    if name in ("run_dir", "restart"):
        pytest.skip(f"{name} chooses the folder or re-runs everything by design; declared operational")
    args = base_args(tmp_path)
    assert run_every_stage(args) == set(STAGES)
    assert run_every_stage(args) == set()  # nothing changed: everything reused

    value, direct = EXPECTED[name]
    before = baseline_settings(args.settings())
    setattr(args, name, value)  # as a re-run with that option changed would carry it (checks are not the point)
    assert run_every_stage(args) == downstream(direct)
    assert (baseline_settings(args.settings()) != before) == (BASELINES in direct)


def test_the_generation_budget_feeds_training_only_when_it_chooses_the_epoch(tmp_path):
    args = base_args(tmp_path)
    args.validation_size = 0.2
    run_every_stage(args)
    args.max_gen_toks = 32
    assert run_every_stage(args) == downstream({"train", "evaluate"})


def test_a_stage_that_writes_the_same_content_again_reruns_nothing_after_it(tmp_path):
    """Curation run again on other settings that give the same rows: the student is not trained again."""
    args = base_args(tmp_path)
    run_every_stage(args, fixed_outputs=True)
    args.validation_seed = 3
    assert run_every_stage(args, fixed_outputs=True) == {"curate"}


def test_operational_teacher_arguments_reuse_the_teacher(tmp_path):
    """A teacher served on another port, with more concurrency or another token, writes the same text."""
    args = base_args(tmp_path)
    args.teacher = "base=local-completions,model=m,base_url=http://127.0.0.1:8000/v1/completions,num_concurrent=2"
    run_every_stage(args)
    args.teacher = (
        "base=local-completions,model=m,base_url=http://127.0.0.1:9001/v1/completions,num_concurrent=8,api_key=sk-x"
    )
    assert run_every_stage(args) == set()
    args.teacher = "base=local-completions,model=other,base_url=http://127.0.0.1:9001/v1/completions"
    assert run_every_stage(args) == set(STAGES)


def test_every_numeric_option_declares_its_range():
    from fcot_plugin.core.command_line import FCOT_RANGE
    from fcot_plugin.pipeline.settings import EvaluateArguments

    for arguments in (DistillArguments, EvaluateArguments):
        for item in fields(arguments):
            if any(kind in str(item.type) for kind in ("int", "float")):
                assert FCOT_RANGE in item.metadata, f"{arguments.__name__}.{item.name} has no declared range"
