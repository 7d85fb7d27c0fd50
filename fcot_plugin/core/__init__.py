"""The bottom layer: errors, the command line, atomic files, secret redaction, hardware precision, memory.

Imports nothing of fcot's outside ``core``.
"""
