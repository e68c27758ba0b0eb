"""dd-plugins: sample weighting for dataset distillation, so distillers stop amplifying bias.

Public API for weighter authors and hosts; see docs/plugin_hooks.md and docs/writing_a_weighter.md.
"""

from dd_plugins.diagnostics import roc_auc, weight_diagnostics
from dd_plugins.errors import (
    DDPluginsError,
    DuplicateNameError,
    MissingBiasLabelsError,
    ParameterError,
    PluginLoadError,
    UnknownNameError,
    WeightError,
)
from dd_plugins.manager import get_plugin_manager, hookimpl, reset_plugin_manager
from dd_plugins.registry import (
    get_dataset_builder,
    get_method,
    get_trainer,
    get_weighter,
    list_datasets,
    list_methods,
    list_trainers,
    list_weighters,
)
from dd_plugins.weights import WeightContext, Weighter, check_weights, compute_weights, normalise_weights

__all__ = [
    "DDPluginsError",
    "DuplicateNameError",
    "MissingBiasLabelsError",
    "ParameterError",
    "PluginLoadError",
    "UnknownNameError",
    "WeightContext",
    "WeightError",
    "Weighter",
    "check_weights",
    "compute_weights",
    "get_dataset_builder",
    "get_method",
    "get_plugin_manager",
    "get_trainer",
    "get_weighter",
    "hookimpl",
    "list_datasets",
    "list_methods",
    "list_trainers",
    "list_weighters",
    "normalise_weights",
    "reset_plugin_manager",
    "roc_auc",
    "weight_diagnostics",
]
