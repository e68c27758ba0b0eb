"""Bundled distillers (DM, DSA, MTT), biased datasets, evaluation, configs and the dd-distill CLI."""
