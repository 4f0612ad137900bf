"""What a plugin author writes and what kuiperlite reads from it, with no sockets.

The decorators, the specs read from them, type hints as the schema, the
Context user code receives and its state. Imports nothing of kuiperlite
but :mod:`kuiperlite.errors`.
"""
