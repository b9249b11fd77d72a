"""The options several commands share, defined once so that they are named, defaulted and explained
alike everywhere (the README's table lists them)."""
import typer

SET_HELP = "Override a preset value, one per flag: --set model.dropout=0.8 --set data.videos_per_gpu=4"
CHECKPOINT_HELP = ("Ours, mmaction2 0.x or original TSM checkpoint: a path, a URL or a model-zoo file name "
                   "(downloaded once); or a model tsm export wrote (.onnx, OpenVINO .xml).")


def preset(required=True):
    help = "Preset name, zoo config name or YAML file (e.g. the tsm.yaml `tsm prepare custom` writes)."
    if required:
        return typer.Option(..., "--preset", "-p", help=help)
    return typer.Option(None, "--preset", "-p", help=help + " [default: the checkpoint's, or its zoo file name's]")


def overrides():
    return typer.Option(None, "--set", help=SET_HELP)


def device():
    return typer.Option("auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N.")


def amp():
    return typer.Option(None, help="Mixed precision: bf16 (CPU or GPU) or fp16 (GPU).")


def benchmark_amp():
    return typer.Option(None, "--amp", help="Mixed precision: bf16 (CPU or GPU), fp16 (GPU) or none [default: none; "
                                            "with --train as tsm train: bf16 on a CPU that computes it natively].")


def training_amp():
    return typer.Option(None, "--amp", help="Mixed precision: bf16 (CPU or GPU), fp16 (GPU) or none "
                                            "[default: bf16 on a CPU that computes it natively (AVX512-BF16, AMX, "
                                            "Arm's BF16), else none; a resumed run keeps its own].")


def channels_last():
    return typer.Option(None, "--channels-last/--no-channels-last",
                        help="Channels-last memory format [default: on for training on the CPU (faster, the same "
                             "numbers up to rounding); a resumed run keeps its own].", show_default=False)


def list_file(what="Video list"):
    return typer.Option(None, "--list", "--ann-file", help=f"{what} in mmaction2's format (the preset's "
                                                           "data.<split>.ann_file).")


def data_root():
    return typer.Option(None, "--data-root", "--data-prefix",
                        help="Folder the list's paths are relative to (the preset's data.<split>.data_prefix).")


def gpus():
    return typer.Option(1, min=0, help="Processes on this machine: GPUs with NCCL, or CPU processes with Gloo "
                                       "when there is no GPU; 0 = one process on the CPU.")


def processes_and_device(gpus, device):
    """--gpus N as the processes to start: 0 is one process on the CPU, as in tsm train."""
    return (1, "cpu") if gpus == 0 else (gpus, device)


def master_port():
    return typer.Option(29500, min=1, max=65535,
                        help="The rendezvous port of node 0. On one machine, a free port is taken when this one "
                             "is in use (e.g. by a training beside a test).")


def top():
    return typer.Option(5, min=1, help="How many classes to show (per video, or per step).")


def workers():
    return typer.Option(None, min=0, help="Loader worker processes [default: the preset's data.workers_per_gpu].")


def threshold():
    return typer.Option(0.5, min=0.0, max=1.0, help="Multi-label models (data.multi_label): every class at or "
                                                    "above this probability, instead of the top ones.")


def as_json(help="Print JSON for scripts."):
    return typer.Option(False, "--json", help=help)



def decoder():
    return typer.Option(None, help="Video decoder: auto (the fastest installed), pyav, torchcodec or decord "
                                   "[default: the preset's data.decoder, auto].")


def fast():
    return typer.Option(True, "--fast/--no-fast", help="The inference fast path: BatchNorm folded into the "
                                                       "convolutions, channels-last memory (same outputs up to "
                                                       "float rounding; docs/benchmarks.md).")


def backend():
    return typer.Option("torch", help="torch, onnxruntime or openvino: with a checkpoint, the others run it "
                                      "exported (once, verified, cached by the checkpoint's hash); an exported "
                                      "file runs in its own engine. CPU only; tsm[deploy] / tsm[openvino].")


def command_line(ctx, leave_out=()):
    """The words of the command being run, rebuilt from what its command line parsed (the options that
    differ from their defaults, in the command's own spelling), without the parameters in `leave_out`."""
    import click

    words = [ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in leave_out or value is None or value == param.default:
            continue
        if isinstance(param, click.Argument):
            words += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        elif param.is_flag:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            for item in value if param.multiple else [value]:
                words += [param.opts[0], str(item)]
    return words
