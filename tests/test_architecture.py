"""The package's layers hold: no import cycle, nothing imports a layer above it, the task hooks stay light."""

from __future__ import annotations

from helpers.paths import REPO
from helpers.scripts import load_script

check_architecture = load_script(REPO / "scripts" / "check_architecture.py")


def test_the_package_has_no_cycle_and_no_upward_import():
    assert check_architecture.problems() == []


def test_every_module_sits_in_a_layer_package():
    layers = set(check_architecture.LAYERS)
    for name in check_architecture.modules():
        parts = name.split(".")
        assert name == "fcot_plugin" or name in check_architecture.ENTRY_MODULES or parts[1] in layers, name


def test_a_cycle_and_an_upward_import_are_caught():
    graph = {"fcot_plugin.core.a": {"fcot_plugin.core.b"}, "fcot_plugin.core.b": {"fcot_plugin.core.a"}}
    assert check_architecture.cycles(graph) == [["fcot_plugin.core.a", "fcot_plugin.core.b"]]
    assert check_architecture.layer("fcot_plugin.cli.fcot") > check_architecture.layer("fcot_plugin.core.errors")


def test_imports_inside_functions_count(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from fcot_plugin.pipeline import distill\n    import fcot_plugin.cli.fcot\n")
    known = check_architecture.modules()
    assert check_architecture.imports_of(module, known) == {"fcot_plugin.pipeline.distill", "fcot_plugin.cli.fcot"}
