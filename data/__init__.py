"""Data loading: import, export, coordinate conversion, the demo city."""
