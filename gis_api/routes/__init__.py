"""Route modules of the HTTP service, one per concern."""
