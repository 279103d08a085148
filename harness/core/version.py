"""The package version, in one place (setup.cfg reads it; every record carries it with the git commit)."""
VERSION = "0.1.0"
