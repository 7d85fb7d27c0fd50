"""fcot's own error class: input or state fcot cannot use, with a message that names the problem and the fix.

Every fcot command turns it into one line (:mod:`fcot_plugin.core.command_line`); any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations


class FcotError(ValueError):
    """Input or state fcot cannot use; the message names the problem and the fix.

    A ``ValueError`` so that code validating arguments (dataclass ``__post_init__``) keeps its usual type.
    """
