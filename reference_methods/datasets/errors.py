"""Errors that dataset builders raise; each message says what to do next."""

from dd_plugins.errors import DDPluginsError


class DatasetParameterError(DDPluginsError, ValueError):
    """A dataset parameter outside its valid range (checked before any data is read)."""


class DataNotFoundError(DDPluginsError, FileNotFoundError):
    """Raw data that is neither on disk nor downloadable; the message names the files and folder."""
