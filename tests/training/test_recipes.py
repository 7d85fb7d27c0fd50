"""Every shipped recipe parses with TRL, states every hyper-parameter as defaults.py has it, and its header is true."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
import yaml
from helpers.paths import REPO
from helpers.scripts import sft_recipe

from fcot_plugin.training.defaults import PAPER_RECIPE, PaperRecipe

RECIPES = sorted((REPO / "recipes").glob("*/sft/config_*.yaml"))

ids = [str(path.relative_to(REPO / "recipes")) for path in RECIPES]


def test_recipes_follow_the_model_sft_config_layout():
    assert RECIPES and not list((REPO / "recipes").glob("*/*.yaml"))  # recipes/<Model>/sft/config_<variant>.yaml


@pytest.mark.parametrize("recipe", RECIPES, ids=ids)
def test_recipe_parses_with_the_documented_overrides(recipe):
    config = yaml.safe_load(recipe.read_text())
    overrides = {"task": "coin_flip", "dataset_name": "data/coin_flip_fcot", "output_dir": "runs/x", "use_cpu": True}
    script_args, training_args, model_args = (
        sft_recipe().make_parser().parse_dict({**config, **overrides}, allow_extra_keys=False)
    )
    assert model_args.model_name_or_path and script_args.task == "coin_flip"
    # the paper's hyper-parameters come from FcotSFTConfig, not from the recipe
    assert (training_args.learning_rate, training_args.per_device_train_batch_size) == (3e-4, 8)
    assert training_args.num_train_epochs == 20 and training_args.completion_only_loss is True


#: what a reader of a recipe must see without opening the code (open-r1's recipes state them all)
HYPER_PARAMETERS = (
    *("learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "optim", "num_train_epochs"),
    *("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "completion_only_loss"),
    *("train_sampling_strategy", "seed", "precision"),
)


@pytest.mark.parametrize("recipe", RECIPES, ids=ids)
def test_recipe_states_every_hyper_parameter_as_defaults_py(recipe):
    config = yaml.safe_load(recipe.read_text())
    assert not set(HYPER_PARAMETERS) - set(config), f"{recipe.name} leaves hyper-parameters unstated"
    for item in fields(PaperRecipe):
        assert config[item.name] == getattr(PAPER_RECIPE, item.name), f"{recipe.name}: {item.name}"
    # stated, never changed: parsed with and without them, the recipe trains with the same values
    overrides = {"task": "coin_flip", "dataset_name": "data/coin_flip_fcot", "output_dir": "runs/x", "use_cpu": True}
    bare = {key: value for key, value in config.items() if key not in HYPER_PARAMETERS}
    stated = sft_recipe().make_parser().parse_dict({**config, **overrides}, allow_extra_keys=False)[1]
    default = sft_recipe().make_parser().parse_dict({**bare, **overrides}, allow_extra_keys=False)[1]
    values = [{key: getattr(args, key) for key in HYPER_PARAMETERS} for args in (stated, default)]
    assert values[0] == values[1]
    assert not {"task", "dataset_name", "bf16", "fp16"} & set(config)  # task is an override; precision is auto


@pytest.mark.parametrize("recipe", RECIPES, ids=ids)
def test_recipe_header_names_real_files_and_true_process_counts(recipe):
    header = "".join(line for line in recipe.read_text().splitlines(keepends=True) if line.startswith("#"))
    for path in re.findall(r"\b(?:recipes|ds_configs)/[\w./-]+\.(?:py|yaml|json)", header):
        assert (REPO / path).is_file(), f"{recipe.name} names {path}, which does not exist"
    for launch in re.findall(r"ds_configs/(\w+\.yaml) starts (\d+) processes", header):
        processes = yaml.safe_load((REPO / "ds_configs" / launch[0]).read_text())["num_processes"]
        assert processes == int(launch[1]), f"{launch[0]} starts {processes} processes, not {launch[1]}"
    assert "ds_configs/zero2.yaml starts" in header  # the multi-GPU launch states its process count
