"""Default plugin: registers the bundled evaluation trainers."""

from dd_plugins.manager import hookimpl


@hookimpl
def dd_register_trainers(register):
    """Filled in as trainers land (see reference_methods/trainers/)."""
