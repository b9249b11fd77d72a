"""The `tsm` command: one Typer app, one module per subcommand in tsmcli/commands/. Each command makes
its own process-wide settings (tsmcli.process.configure_process); here errors become exit codes."""
import logging
import sys

import typer
from rich.console import Console
from rich.markup import escape

from .commands import benchmark as benchmark_cmd
from .commands import explain as explain_cmd
from .commands import export as export_cmd
from .commands import extract as extract_cmd
from .commands import package as package_cmd
from .commands import plot as plot_cmd
from .commands import predict as predict_cmd
from .commands import prepare as prepare_cmd
from .commands import presets as presets_cmd
from .commands import sample as sample_cmd
from .commands import serve as serve_cmd
from .commands import stream as stream_cmd
from .commands import test as test_cmd
from .commands import train as train_cmd
from .errors import JobFailed, UserError
from .signals import Interrupted

app = typer.Typer(
    name="tsm",
    help="TSM video action recognition: the mmaction2 TSM model zoo, simpler and faster.\n\n"
         "Examples:\n\n"
         "  tsm presets list\n\n"
         "  tsm presets show tsm_r50_1x1x8_50e_k400 --set model.dropout=0.8\n\n"
         "  tsm benchmark data --preset tsm_r50_video_1x1x8_50e_k400 videos/",
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts show [brackets] as typed
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
def _print_version(value: bool):
    if value:
        from importlib.metadata import version

        typer.echo(f"tsm {version('tsm')}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")):
    pass


app.add_typer(presets_cmd.app, name="presets", short_help="Browse, show and import presets.")
app.add_typer(prepare_cmd.app, name="prepare", short_help="A dataset as downloaded, to lists and frames.")
app.command("train", short_help="Train a preset, from one CPU to many GPUs.")(train_cmd.train)
app.command("finetune", short_help="Train from a checkpoint's backbone, new head.")(train_cmd.finetune)
app.command("test", short_help="Accuracy of a checkpoint, as the zoo tests.")(test_cmd.test)
app.command("predict", short_help="Top classes of videos, or their timeline.")(predict_cmd.predict)
app.add_typer(benchmark_cmd.app, name="benchmark", short_help="Speed of a model or of the data pipelines.")
app.command("stream", short_help="Recognise actions as frames arrive (webcam).")(stream_cmd.stream)
app.command("export", short_help="Write an ONNX or OpenVINO model, verified.")(export_cmd.export)
app.command("extract", short_help="Features of videos, for downstream models.")(extract_cmd.extract)
app.command("plot", short_help="Training curves of one or several runs.")(plot_cmd.plot)
app.command("explain", short_help="Grad-CAM heat maps of a prediction.")(explain_cmd.explain)
app.command("package", short_help="A checkpoint as a folder to share.")(package_cmd.package)
app.command("push", short_help="Upload a package to the Hugging Face Hub.")(package_cmd.push)
app.command("serve", short_help="Serve a model over HTTP and WebSocket.")(serve_cmd.serve)
app.command("sample-video", short_help="Copy a sample clip to try the commands on.")(sample_cmd.sample_video_command)


PLAIN_TYPES = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "path": "PATH", "bool": "BOOLEAN"}


def command():
    """The `tsm` command as click runs it, with each option's value shown as INTEGER, TEXT, PATH ...
    in help (Typer would show its Python type: `<list[str]>`, `<int range>`)."""
    root = typer.main.get_command(app)

    def name_values(cmd):
        context = root.context_class(cmd)
        for param in cmd.params:
            if param.metavar is not None:
                continue
            if param.param_type_name == "argument":  # named for what it is: tsm test CHECKPOINT, no type after
                param.metavar = param.name.upper()
                param.display_type = lambda context: ""
            elif not param.is_flag:
                python_type = param.display_type(context).strip("<>").removesuffix(" range")
                python_type = python_type.removeprefix("list[").removesuffix("]")
                param.metavar = PLAIN_TYPES.get(python_type, python_type.upper())
        for sub in getattr(cmd, "commands", {}).values():
            name_values(sub)

    name_values(root)
    return root


def main():
    # torch's extension builder, which NNCF imports, warns "No CUDA runtime is found" on every CPU machine
    # that has a CUDA toolkit: nothing a user of tsm can or should act on
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    err = Console(stderr=True)
    try:
        command()(args=sys.argv[1:], prog_name="tsm")
    except Interrupted as e:
        err.print(f"stopped by {e}; run the same command again to continue where it stopped", highlight=False)
        sys.exit(128 + e.signum)
    except UserError as e:  # in the command line's words: a bad parameter under its option's name
        err.print(f"[bold red]error:[/] {escape(e.for_command_line())}", highlight=False, markup=True,
                  soft_wrap=True)
        sys.exit(2)
    except JobFailed as e:
        err.print(f"[bold red]failed:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(1)
    except OSError as e:  # no write permission, disk full, a file where a folder should be
        if e.filename is None:
            raise
        err.print(f"[bold red]error:[/] {escape(str(e.filename))}: {e.strerror}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
