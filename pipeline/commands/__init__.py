"""One module per `pricelens` command; each exposes `register(group)`."""
