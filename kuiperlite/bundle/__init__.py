"""The build tools: a plugin's metadata and its installable zip, read from its specs.

Imports :mod:`kuiperlite.declare` (and :mod:`kuiperlite.errors`); never a
socket, never the runtime, never eKuiper's side.
"""
