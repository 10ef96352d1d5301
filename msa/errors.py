class MsaError(Exception):
    """An MSA could not be had; the message says why, for the job's reason."""
