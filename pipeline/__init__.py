"""Wiring crawler, classifier and store into pricelens' stages and its CLI."""
