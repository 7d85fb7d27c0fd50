"""``accelerate launch [...] -m fcot_plugin.train --config <recipe.yaml>``: the SFT recipe from an installed package.

The same as ``recipes/sft.py`` without a checkout; the work is :func:`fcot_plugin.training.sft.main`.
"""

from fcot_plugin.training.sft import main, make_parser

if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
