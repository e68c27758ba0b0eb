"""Configs shipped as package data, selectable by name."""
