"""Default plugin: registers the bundled evaluation trainers."""

from dd_plugins.manager import hookimpl
from reference_methods.trainers.dfa import DFATrainer
from reference_methods.trainers.erm import ERMTrainer
from reference_methods.trainers.lff import LfFTrainer


@hookimpl
def dd_register_trainers(register):
    """Filled in as trainers land (see reference_methods/trainers/)."""
    register("erm", ERMTrainer)
    register("lff", LfFTrainer)
    register("dfa", DFATrainer)
