"""Where content comes from: a directory, an HTTP server, a hashed asset manifest."""
