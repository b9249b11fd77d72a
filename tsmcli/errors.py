class UserError(Exception):
    """A problem with what the user gave us (a file, a key, a value). The CLI prints it without a
    traceback (for_command_line: in the command line's words) and exits with code 2."""

    def for_command_line(self):
        return str(self)


class OptionError(UserError):
    """A bad value of one parameter, named as the Python API names it (str: "backend 'x': ..."); the
    command line shows it under its option (for_command_line: "--backend x: ..."). flag: the option, where
    its name is not the parameter's with dashes."""

    def __init__(self, option, value, problem, flag=None):
        self.option, self.value, self.problem = option, value, problem
        self.flag = flag or "--" + option.replace("_", "-")
        shown = "" if value is None else f" {value!r}"
        super().__init__(f"{option}{shown}: {problem}")

    def for_command_line(self):
        shown = "" if self.value is None else f" {self.value}"
        return f"{self.flag}{shown}: {self.problem}"


class PresetKeyError(UserError):
    """A problem a preset key's value can fix: the message says it in the Python API's words
    (build_model(..., model__pretrained=...)); the command line's adds its --set form."""

    def __init__(self, message, key, fix):
        self.key, self.fix = key, fix
        python = "__".join(key.split("."))
        super().__init__(f"{message}\nSet {key} to {fix} (build_model / load_model(..., {python}=...))")

    def for_command_line(self):
        head = str(self).split("\nSet ")[0]
        return f"{head}\nSet {self.key} to {self.fix}: --set {self.key}=..."


class JobFailed(Exception):
    """A worker process of a multi-process job failed; the job was ended. The CLI prints the message
    (which names the worker and its error) without a traceback and exits with code 1."""
