"""The audit log: every change made from the admin UI or the CLI."""
