class UserError(Exception):
    """A problem with what the user gave us (a file, a key, a value). The CLI prints it without a
    traceback and exits with code 2."""


class JobFailed(Exception):
    """A worker process of a multi-process job failed; the job was ended. The CLI prints the message
    (which names the worker and its error) without a traceback and exits with code 1."""
