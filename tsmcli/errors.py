class UserError(Exception):
    """A problem with what the user gave us (a file, a key, a value). The CLI prints it without a
    traceback and exits with code 2."""
