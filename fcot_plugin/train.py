"""``accelerate launch [...] -m fcot_plugin.train --config <recipe.yaml>``: the SFT recipe from an installed package.

The same as ``recipes/sft.py`` without a checkout; the work is :func:`fcot_plugin.training.sft.main`.
"""

import sys

from fcot_plugin.core.secrets import guard_terminal
from fcot_plugin.training.sft import main, make_parser

if __name__ == "__main__":
    guard_terminal(sys.argv[1:])  # no token reaches the terminal, as under the fcot commands
    main(*make_parser().parse_args_and_config())
