"""Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium, for the tests of pages users
open: the serving demo page and the documentation site."""
import contextlib
import os

import pytest

# what this closed network needs: no background connections, no QUIC, a fresh profile
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium(profile, *flags):
    """A Chrome driver that records the console, or a skip naming what to install."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (pip install selenium)")
    if not (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}", *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService("/usr/bin/chromedriver"))


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def fake_camera_clip(frames, path, fps=12):
    """uint8 (H, W, 3) frames as a y4m file (raw frames), what Chromium's fake camera plays
    (--use-file-for-fake-video-capture), over and over."""
    import av

    frames = list(frames)
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@contextlib.contextmanager
def webcam_on_the_demo_page(folder, clip, checkpoint, *server_options, script=None):
    """`tsm serve CHECKPOINT` and its demo page in headless Chromium, whose fake camera plays `clip` (a
    y4m file, fake_camera_clip); the webcam is started once the page names the model. script: JavaScript
    run in the page before its own. Yields (driver, server)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from serving import Server

    driver = chromium(folder / "profile", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-video-capture={clip}")
    server = None
    try:
        server = Server(checkpoint, folder, *server_options)
        if script:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
        driver.get(server.url + "/")
        WebDriverWait(driver, 30).until(lambda d: "classes" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "camera").click()
        yield driver, server
    finally:
        driver.quit()
        if server is not None:
            server.stop()
