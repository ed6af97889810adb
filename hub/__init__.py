"""licence-hub composition root: settings, kernel services, HTTP layer, CLI and exchange use cases."""
