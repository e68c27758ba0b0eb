"""Errors of the plugin layer; each message says what to do next."""


class DDPluginsError(Exception):
    """Base class for every error dd-plugins raises on purpose."""


class UnknownNameError(DDPluginsError, KeyError):
    """A weighter, method, dataset or trainer name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(DDPluginsError):
    """Two plugins registered the same name for the same kind of component."""


class ParameterError(DDPluginsError, TypeError):
    """Parameters that a component's factory does not accept."""


class PluginLoadError(DDPluginsError):
    """A plugin failed to load and the run needs it (or DD_PLUGINS_STRICT=1)."""


class WeightError(DDPluginsError, ValueError):
    """Weights that a weighter returned are unusable (shape, NaN/inf, negative, all-zero class)."""


class MissingBiasLabelsError(WeightError):
    """A weighter that needs bias labels was asked to weigh a dataset without them."""
