"""Bundled distillers: DM, DSA and MTT."""
