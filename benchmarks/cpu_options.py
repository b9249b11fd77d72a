"""The CPU settings every in-process benchmark takes: --threads, and --allocator (glibc's allocator
tuned as the `tsm` command tunes it; without it, what a Python API user gets)."""
import torch


def add_cpu_options(parser, threads=2):
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--allocator", action="store_true", help="tune glibc's allocator as `tsm` does")


def apply_cpu_options(args):
    """Apply them; -> a description for the benchmark's header line."""
    if args.allocator:
        from tsmcli.allocator import tune_cpu_allocator

        tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    return f"{args.threads} threads, allocator {'tuned' if args.allocator else 'default'}"
