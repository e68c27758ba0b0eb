"""Evaluation trainers: how a fresh net is trained on a (synthetic) training set."""
