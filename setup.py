"""Ships ``fcot_lm_eval_plugins.pth`` at the top of site-packages, for wheel and editable installs alike.

Everything else about the package is in pyproject.toml. The ``.pth`` line runs at interpreter start and only adds
a lazy import hook (``fcot_plugin.harness.entry_points``) that makes plain ``lm_eval`` read plugin entry points.
"""

from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build

PTH = "fcot_lm_eval_plugins.pth"


class build_pth(Command):
    """Copy the ``.pth`` file next to the packages: into build_lib for a wheel, into the wheel root when editable."""

    description = "ship the lm-eval plugin .pth file"
    user_options = []
    editable_mode = False

    def initialize_options(self):
        self.target_dir = None

    def finalize_options(self):
        # editable_wheel sets install_lib to the root of the wheel it builds and leaves build_lib out of it
        command = "install" if self.editable_mode else "build"
        option = "install_lib" if self.editable_mode else "build_lib"
        self.target_dir = getattr(self.get_finalized_command(command), option)

    def run(self):
        Path(self.target_dir).mkdir(parents=True, exist_ok=True)
        self.copy_file(str(Path(__file__).parent / PTH), str(Path(self.target_dir) / PTH))

    def get_outputs(self):
        return [str(Path(self.target_dir) / PTH)]


build.sub_commands.append(("build_pth", None))
setup(cmdclass={"build_pth": build_pth})
