"""The `tsm` command: one Typer app, one module per subcommand in tsmcli/commands/. Each command makes
its own process-wide settings (tsmcli.process.configure_process); here errors become exit codes."""
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


app.add_typer(presets_cmd.app, name="presets")
app.add_typer(prepare_cmd.app, name="prepare")
app.command("train")(train_cmd.train)
app.command("finetune")(train_cmd.finetune)
app.command("test")(test_cmd.test)
app.command("predict")(predict_cmd.predict)
app.add_typer(benchmark_cmd.app, name="benchmark")
app.command("stream")(stream_cmd.stream)
app.command("export")(export_cmd.export)
app.command("extract")(extract_cmd.extract)
app.command("plot")(plot_cmd.plot)
app.command("explain")(explain_cmd.explain)
app.command("package")(package_cmd.package)
app.command("push")(package_cmd.push)
app.command("serve")(serve_cmd.serve)


def main():
    err = Console(stderr=True)
    try:
        app(args=sys.argv[1:], prog_name="tsm")
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
