"""Default plugin: registers the built-in weighters through the public hook."""

from dd_plugins.manager import hookimpl
from dd_plugins.weighters.kde import KDEWeighter
from dd_plugins.weighters.oracle import OracleWeighter
from dd_plugins.weighters.pseudo_oracle import PseudoOracleWeighter
from dd_plugins.weighters.uniform import UniformWeighter


@hookimpl
def dd_register_weighters(register):
    register("uniform", UniformWeighter)
    register("oracle", OracleWeighter)
    register("kde", KDEWeighter)
    register("pseudo_oracle", PseudoOracleWeighter)
