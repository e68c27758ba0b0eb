"""Default plugin: registers the bundled distillers."""

from dd_plugins.manager import hookimpl
from reference_methods.methods.dm import DM
from reference_methods.methods.dsa import DSADistiller
from reference_methods.methods.mtt import MTTDistiller


@hookimpl
def dd_register_methods(register):
    """The bundled distillers (see reference_methods/methods/)."""
    register("dm", DM)
    register("dsa", DSADistiller)
    register("mtt", MTTDistiller)
