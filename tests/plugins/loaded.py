"""A plugin that says which modules its process has loaded.

Used by tests/test_layers.py: a plugin served as under eKuiper must load no
tooling (the embedded host, serve, check, metadata, packaging).
"""

import sys

from kuiperlite import function


@function
def loaded(prefix: str) -> list[str]:
    """The names of the loaded modules that start with ``prefix``."""
    return sorted(name for name in sys.modules if name.startswith(prefix))


if __name__ == "__main__":
    import kuiperlite

    kuiperlite.run()
