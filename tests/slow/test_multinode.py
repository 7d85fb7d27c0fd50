"""Two "machines" on one host: recipes/sft.py under ds_configs/zero{2,3}_multinode.yaml, via recipes/launch.slurm.

Each machine is its own ``accelerate launch`` (``--num_machines 2 --machine_rank 0|1 --main_process_ip 127.0.0.1``,
one process each, gloo over loopback TCP), on CPU, with a tiny Llama and 32 curated Coin Flip rows. What is checked:

- the two-machine run trains with world size 2 (the silent failure is machine 0 training alone and exiting 0) and
  saves the same student, tensor for tensor, as one machine running 2 processes (ds_configs/zero2.yaml, zero3.yaml);
- under ZeRO-3, a machine killed mid-run (SIGKILL of its launcher and worker) makes machine 0 fail within seconds,
  not hang, and the same two commands run again resume from the newest complete checkpoint and finish with the same
  weights as a run that was never interrupted.

Launch commands and sizing: docs/scaling.md and ds_configs/README.md.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.serving import free_port

RECIPE = "recipes/SmolLM2-135M-Instruct/sft/config_fcot.yaml"
MULTINODE = "ds_configs/zero3_multinode.yaml"
STEPS, SAVE_STEPS, PER_DEVICE, ROWS = 6, 2, 2, 32
pytestmark = pytest.mark.curated("coin_flip", rows=ROWS)  # the `curated` fixture (tests/conftest.py)
# Two ranks reduce by one addition, which is commutative, and average by halving, which is exact: the two-machine and
# the one-machine run compute the same floats, and so do a resumed and an uninterrupted run (DeepSpeed restores the
# optimizer state and the Trainer the data order and RNG). Measured: 0.0 for both. The bound leaves room for nothing
# but a different summation order in a future reduction kernel; a genuinely different run differs by ~1e-3 and more.
TOLERANCE = 1e-6
LAUNCH_TIMEOUT = 300  # seconds; a launch takes 20-40 s on 2 cores
LOSS_LINE = re.compile(r"\{'loss': ")

SRUN = """#!/bin/bash
# srun stand-in: one task per "node" of $SLURM_NNODES on this host, in parallel; fails if any task fails
while [[ "${1:-}" == --* ]]; do echo "$1" >> "$FAKE_SLURM_LOGS/srun_options"; shift; done
pids=()
for ((node = 0; node < SLURM_NNODES; node++)); do
    SLURM_NODEID=$node SLURM_PROCID=$node "$@" > "$FAKE_SLURM_LOGS/node$node.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
"""
SCONTROL = """#!/bin/bash
# scontrol stand-in: `scontrol show hostnames <list>` names two hosts, the first being this one
[[ "$1 $2" == "show hostnames" ]] && printf '127.0.0.1\\n127.0.0.2\\n'
"""
ACCELERATE = """#!/bin/bash
# `accelerate launch ...` with this interpreter's accelerate
[[ "$1" == launch ]] && shift
exec {python} -m accelerate.commands.launch "$@"
"""
RECORDING_ACCELERATE = """#!/bin/bash
# records its arguments, one JSON file per call (two nodes appending to one file can interleave), instead of launching
mkdir -p "$FAKE_SLURM_LOGS/accelerate_calls"
{python} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" > "$FAKE_SLURM_LOGS/accelerate_calls/$$.json"
"""


# ---------------------------------------------------------------------------------------------------- helpers


def child_environment(**extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
    # One machine's single process would otherwise start a thread per core, and two "machines" on two cores fight
    # over them (a 6-step run took 13 s instead of 2 s); a launcher with 2 processes sets the same itself.
    environment.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **extra)
    return environment


def recipe_arguments(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--task",
        "coin_flip",
        "--model_name_or_path",
        str(model),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--max_steps",
        str(STEPS),
        "--per_device_train_batch_size",
        str(PER_DEVICE),
        "--learning_rate",
        "3e-3",
        "--logging_steps",
        "1",
        "--seed",
        "42",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--report_to",
        "none",
        *extra,
    ]


def machine_command(rank: int, port: int, arguments: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        MULTINODE,
        "--num_machines",
        "2",
        "--num_processes",
        "2",
        "--machine_rank",
        str(rank),
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(port),
        "--mixed_precision",
        "no",
        "recipes/sft.py",
        "--config",
        RECIPE,
        *arguments,
    ]


def start(command: list[str], log: Path, environment: dict[str, str]) -> subprocess.Popen:
    with open(log, "w") as handle:
        return subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_machines(commands: list[list[str]], logs: list[Path]) -> list[subprocess.Popen]:
    return [start(command, log, child_environment()) for command, log in zip(commands, logs, strict=True)]


def kill_machine(process: subprocess.Popen) -> None:
    """SIGKILL a launcher and everything under it, as a machine that dies takes both with it.

    Killing the launcher alone is not a dead machine: torch's elastic agent starts the worker in a session of its
    own, so the worker trains on (and machine 0's agent then waits out its 300 s exit barrier).
    """
    import psutil

    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in family:
        try:
            member.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def kill_strays(*processes: subprocess.Popen, marker: Path) -> None:
    """Every process this test started: the launchers' trees, and any worker whose command line names ``marker``
    (this test's own temporary folder), in case its launcher died first and left it behind."""
    import psutil

    for process in processes:
        kill_machine(process)
    for candidate in psutil.process_iter(["pid", "cmdline"]):
        if candidate.info["pid"] != os.getpid() and str(marker) in " ".join(candidate.info["cmdline"] or []):
            try:
                candidate.kill()
            except psutil.NoSuchProcess:
                pass
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


def wait_all(processes: list[subprocess.Popen], logs: list[Path], timeout: float = LAUNCH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    for process, log in zip(processes, logs, strict=True):
        try:
            code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{log.name} still running after {timeout} s:\n{log.read_text()[-3000:]}")
        assert code == 0, f"{log.name} exited {code}:\n{log.read_text()[-4000:]}"


def saved_world_sizes(*folders: Path) -> list[int]:
    """The world size each run's ``training_args.bin`` recorded, read in a fresh process (unpickling it here would
    bring the runs' accelerate state into this one)."""
    script = "import sys, torch\nfor path in sys.argv[1:]:\n    print(torch.load(path, weights_only=False).world_size)"
    check = subprocess.run(
        [sys.executable, "-c", script, *(str(folder / "training_args.bin") for folder in folders)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    return [int(line) for line in check.stdout.split()]


def max_weight_difference(first: Path, second: Path, same_tensors: bool = True) -> float:
    """The largest absolute difference over every tensor both students hold (``same_tensors``: the same names)."""
    from safetensors.torch import load_file

    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    if same_tensors:
        assert sorted(a) == sorted(b)
    return max((a[name].double() - b[name].double()).abs().max().item() for name in a.keys() & b.keys())


def losses(folder: Path) -> list[float]:
    state = json.loads((folder / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def fake_slurm(folder: Path, accelerate: str) -> Path:
    """``srun``, ``scontrol`` and ``accelerate`` stand-ins in ``folder/bin``; logs go to ``folder``."""
    bin_folder = folder / "bin"
    bin_folder.mkdir(parents=True)
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL), ("accelerate", accelerate)):
        path = bin_folder / name
        path.write_text(text.replace("{python}", sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bin_folder


def slurm_environment(folder: Path, bin_folder: Path, **extra: str) -> dict[str, str]:
    return child_environment(
        PATH=f"{bin_folder}{os.pathsep}{os.environ['PATH']}",
        FAKE_SLURM_LOGS=str(folder),
        SLURM_NNODES="2",
        SLURM_JOB_NODELIST="node[0-1]",
        SLURM_SUBMIT_DIR=str(REPO),
        **extra,
    )


# ------------------------------------------------------------------------------------------------------ fast


def test_multinode_configs_pass_accelerate_and_name_the_standard_launcher():
    sys.path.insert(0, str(REPO / "ds_configs"))
    from validate_ds_configs import validate_accelerate_config

    for stage in (2, 3):
        found = validate_accelerate_config(REPO / "ds_configs" / f"zero{stage}_multinode.yaml")
        assert found["distributed_type"] == "DEEPSPEED" and found["num_machines"] > 1
        assert found["multinode_launcher"] == "standard"
        assert found["deepspeed_config_file"] == f"ds_configs/zero{stage}.json"  # the single-node JSON, shared


def test_multinode_config_without_the_standard_launcher_is_refused(tmp_path):
    import yaml

    sys.path.insert(0, str(REPO / "ds_configs"))
    from validate_ds_configs import validate_accelerate_config

    config = yaml.safe_load((REPO / MULTINODE).read_text())
    del config["deepspeed_config"]["deepspeed_multinode_launcher"]  # accelerate would hand the run to pdsh
    config["mixed_precision"] = "bf16"  # refused next to deepspeed_config_file
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="deepspeed_multinode_launcher: standard") as error:
        validate_accelerate_config(broken)
    assert "mixed_precision" in str(error.value)


def test_multinode_slurm_script_starts_one_accelerate_per_node(tmp_path):
    """recipes/launch.slurm under stand-in srun/scontrol: per node, the node count, its rank, the first node's
    address, the config, and the recipe overrides with their quoting intact."""
    bin_folder = fake_slurm(tmp_path, RECORDING_ACCELERATE)
    out = "runs/with space"
    result = subprocess.run(
        ["bash", "recipes/launch.slurm", RECIPE, "--task", "gsm8k", "--output_dir", out],
        cwd=REPO,
        env=slurm_environment(tmp_path, bin_folder, MASTER_PORT="29555"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    calls = [json.loads(path.read_text()) for path in (tmp_path / "accelerate_calls").glob("*.json")]
    assert len(calls) == 2
    for call in calls:
        options = dict(zip(call[1::2], call[2::2], strict=False))
        assert call[0] == "launch" and options["--config_file"] == "ds_configs/zero2_multinode.yaml"
        assert options["--num_machines"] == "2" and options["--num_processes"] == "16"  # 2 nodes x 8 GPUs
        assert options["--main_process_ip"] == "127.0.0.1" and options["--main_process_port"] == "29555"
        assert call[call.index("recipes/sft.py") :] == [
            "recipes/sft.py",
            "--config",
            RECIPE,
            "--task",
            "gsm8k",
            "--output_dir",
            out,
        ]
    assert sorted(dict(zip(call[1::2], call[2::2], strict=False))["--machine_rank"] for call in calls) == ["0", "1"]
    assert "--kill-on-bad-exit=1" in (tmp_path / "srun_options").read_text().split()


def test_multinode_slurm_script_refuses_a_missing_recipe(tmp_path):
    bin_folder = fake_slurm(tmp_path, RECORDING_ACCELERATE)
    result = subprocess.run(
        ["bash", "recipes/launch.slurm", "recipes/nope.yaml"],
        cwd=REPO,
        env=slurm_environment(tmp_path, bin_folder),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "recipe recipes/nope.yaml not found" in result.stderr
    assert not (tmp_path / "accelerate_calls").exists()


# ------------------------------------------------------------------------------------------------------ slow


@pytest.fixture(scope="module")
def two_machines(tiny_model, curated, tmp_path_factory):
    """``two_machines(stage)``: the output folder of an uninterrupted two-machine run under
    ds_configs/zero<stage>_multinode.yaml, launched by recipes/launch.slurm under stand-in srun/scontrol (once per
    stage and module)."""
    runs: dict[int, Path] = {}

    def run(stage: int) -> Path:
        if stage in runs:
            return runs[stage]
        folder = tmp_path_factory.mktemp(f"two_machines_zero{stage}")
        out = folder / "student"
        bin_folder = fake_slurm(folder, ACCELERATE)
        environment = slurm_environment(
            folder,
            bin_folder,
            LAUNCH_CONFIG=f"ds_configs/zero{stage}_multinode.yaml",
            GPUS_PER_NODE="1",
            MASTER_PORT=str(free_port()),
        )
        arguments = recipe_arguments(tiny_model, curated, out, "--save_strategy", "no")
        job = start(["bash", "recipes/launch.slurm", RECIPE, *arguments], folder / "job.log", environment)
        try:
            job.wait(timeout=LAUNCH_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        finally:
            kill_strays(job, marker=folder)
        logs = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted(folder.glob("*.log")))
        assert job.returncode == 0, logs
        runs[stage] = out
        return out

    return run


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_multinode_two_machines_match_one_machine(stage, two_machines, tiny_model, curated, tmp_path):
    """Two machines x 1 process (ZeRO-2/3, gloo) save the student one machine x 2 processes saves."""
    two_machine_run = two_machines(stage)
    one_machine = tmp_path / "student"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        f"ds_configs/zero{stage}.yaml",
        "--num_processes",
        "2",
        "--mixed_precision",
        "no",
        "--main_process_port",
        "0",
        "recipes/sft.py",
        "--config",
        RECIPE,
        *recipe_arguments(tiny_model, curated, one_machine, "--save_strategy", "no"),
    ]
    process = start(command, tmp_path / "one_machine.log", child_environment())
    try:
        wait_all([process], [tmp_path / "one_machine.log"])
    finally:
        kill_strays(process, marker=tmp_path)

    assert saved_world_sizes(two_machine_run, one_machine) == [2, 2]
    for folder in (two_machine_run, one_machine):
        state = json.loads((folder / "trainer_state.json").read_text())
        # 6 steps of 2 ranks x 2 rows over 32 rows: a machine training alone would be at epoch 0.375
        assert state["global_step"] == STEPS and state["epoch"] == STEPS * PER_DEVICE * 2 / ROWS
        assert "| `total_train_batch_size` | `4` |" in (folder / "README.md").read_text()
    assert max(abs(a - b) for a, b in zip(losses(two_machine_run), losses(one_machine), strict=True)) <= TOLERANCE
    assert max_weight_difference(two_machine_run, one_machine) <= TOLERANCE
    # it trained (the initial folder may store tied weights once, the trained one twice)
    assert max_weight_difference(two_machine_run, tiny_model, same_tensors=False) > 1e-3


@pytest.mark.slow
def test_multinode_resumes_after_a_machine_is_killed(two_machines, tiny_model, curated, tmp_path):
    """Kill machine 1 once checkpoint-2 is complete: machine 0 fails fast; the same two commands resume."""
    from fcot_plugin.training.checkpoints import last_complete_checkpoint

    out = tmp_path / "student"
    port = free_port()
    arguments = recipe_arguments(tiny_model, curated, out, "--save_strategy", "steps", "--save_steps", str(SAVE_STEPS))
    commands = [machine_command(rank, port, arguments) for rank in (0, 1)]
    first_logs = [tmp_path / f"first_machine{rank}.log" for rank in (0, 1)]
    again_logs = [tmp_path / f"again_machine{rank}.log" for rank in (0, 1)]
    machines: list[subprocess.Popen] = []
    try:
        machines = start_machines(commands, first_logs)
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while not (out / f"checkpoint-{SAVE_STEPS}" / "trainer_state.json").is_file():
            if time.monotonic() > deadline or any(machine.poll() is not None for machine in machines):
                pytest.fail(f"no checkpoint-{SAVE_STEPS}:\n{first_logs[0].read_text()[-4000:]}")
            time.sleep(0.05)
        kill_machine(machines[1])
        killed = time.monotonic()
        try:
            code = machines[0].wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"machine 0 still running 120 s after machine 1 died:\n{first_logs[0].read_text()[-3000:]}")
        assert code != 0, "machine 0 exited 0 although its peer died mid-run"
        assert time.monotonic() - killed < 60
        assert not (out / "model.safetensors").exists()  # the interrupted run never finished
        kill_strays(*machines, marker=tmp_path)

        resume_from = last_complete_checkpoint(out)
        resumed_step = int(Path(resume_from).name.split("-")[1])
        assert SAVE_STEPS <= resumed_step < STEPS, resume_from

        machines = start_machines(commands, again_logs)
        wait_all(machines, again_logs)
    finally:
        kill_strays(*machines, marker=tmp_path)

    log = again_logs[0].read_text()
    assert f"resuming from {resume_from}" in log
    assert len(LOSS_LINE.findall(log)) == STEPS - resumed_step  # only the steps after the checkpoint ran again
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == STEPS and len(losses(out)) == STEPS
    assert saved_world_sizes(out) == [2]
    # the same weights as the run that was never interrupted: optimizer state, data order and RNG all resumed
    assert max_weight_difference(out, two_machines(3)) <= TOLERANCE
