"""The harness's named exceptions; the CLI turns each into one red line and exit code 2."""


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class ConfigError(HarnessError, ValueError):
    """A configuration key, type or value is wrong (named with its full dotted key)."""


class DataError(HarnessError):
    """Input data is missing or unusable as a whole (single bad records are skipped, not raised)."""


class ClientFailure(HarnessError):
    """A client's round failed; the round engine drops the client for that round."""


class NonFiniteUpdate(ClientFailure, ValueError):
    """A client uploaded NaN or Inf values."""
