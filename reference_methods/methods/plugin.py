"""Default plugin: registers the bundled distillers."""

from dd_plugins.manager import hookimpl


@hookimpl
def dd_register_methods(register):
    """Filled in as methods land (see reference_methods/methods/)."""
