"""`tsm serve` started as users start it, for the tests that talk to it (test_serve.py, the docs' examples)."""
import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tsm(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tsmcli.cli", *map(str, args)], capture_output=True, text=True,
                          env=env)


class Server:
    """`tsm serve` in its own process, its temporary files in its own folder."""

    def __init__(self, checkpoint, folder, *options, env=None, cwd=None):
        self.port, self.tmp = free_port(), folder / f"tmp-{time.monotonic_ns()}"
        self.tmp.mkdir()
        environment = {**os.environ, "TMPDIR": str(self.tmp), **(env or {})}
        self.log = open(folder / f"server-{self.port}.log", "w+")
        self.process = subprocess.Popen([sys.executable, "-m", "tsmcli.cli", "serve", str(checkpoint), "--port",
                                         str(self.port), "--device", "cpu", *map(str, options)],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=environment, cwd=cwd)
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {env['TSM_API_KEY']}"} if "TSM_API_KEY" in (env or {}) else {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(self.url + "/ready", headers=self.headers, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"not ready in 120 s:\n{self.output()}")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return open(self.log.name).read()

    def leftovers(self):
        return [p.name for p in self.tmp.iterdir()]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()
