"""Bad inputs, one file per command: each is refused in one line naming the fix (helpers/one_line.py)."""
