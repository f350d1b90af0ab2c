"""Loaders for the model and the data, recognised by content."""
