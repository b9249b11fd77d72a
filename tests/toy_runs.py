"""Training runs on the toy dataset (`prepare_toy(root)`), as the training tests set them up."""
import subprocess
import sys

import tsmcli


def toy_preset(toy, *overrides):
    """The toy preset reading the lists and videos of the toy dataset prepared in `toy`."""
    return tsmcli.load_preset("tsm_r18_1x1x8_toy", [
        f"data.train.ann_file={toy}/toy_train_list_videos.txt", f"data.train.data_prefix={toy}/videos",
        f"data.val.ann_file={toy}/toy_val_list_videos.txt", f"data.val.data_prefix={toy}/videos", *overrides])


def write_run_yaml(path, toy, videos_per_gpu, epochs=2, extra=""):
    """A user YAML extending the toy preset as users run it (the preset's loader workers), for a few
    short epochs with validation, a checkpoint every epoch and a log record per step."""
    path.write_text(f"""extends: tsm_r18_1x1x8_toy
data:
  videos_per_gpu: {videos_per_gpu}
  train: {{ann_file: {toy}/toy_train_list_videos.txt, data_prefix: {toy}/videos}}
  val: {{ann_file: {toy}/toy_val_list_videos.txt, data_prefix: {toy}/videos}}
schedule: {{epochs: {epochs}}}
evaluation: {{interval: 1}}
checkpoint: {{interval: 1}}
log: {{interval: 1}}
{extra}""")
    return path


def tsm_train(*args, env=None):
    """`tsm train --device cpu --deterministic ARGS...` in a new process (output on its stdout pipe)."""
    return subprocess.Popen([sys.executable, "-m", "tsmcli.cli", "train", "--device", "cpu", "--deterministic",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def finished(proc, timeout=300):
    """Wait for a tsm_train process, reading its output (a full pipe would stall it); -> (code, output)."""
    output = proc.communicate(timeout=timeout)[0]
    return proc.returncode, output
