"""``accelerate launch [...] -m fcot_plugin.train --config <recipe.yaml>``: the SFT recipe from an installed package.

The same command line as ``recipes/sft.py`` without a checkout (:func:`fcot_plugin.training.sft.cli`), one-line
errors included; ``fcot distill --launcher accelerate`` launches it.
"""

from fcot_plugin.training.sft import cli

if __name__ == "__main__":
    cli(prog="python -m fcot_plugin.train")
