"""The bottom layer: errors, the command line, atomic files, output-folder safety, number ranges, secret redaction,
hardware precision, memory.

Imports nothing of fcot's outside ``core``.
"""
