"""Default plugin: registers the bundled biased datasets."""

from dd_plugins.manager import hookimpl


@hookimpl
def dd_register_datasets(register):
    """Filled in as datasets land (see reference_methods/datasets/)."""
