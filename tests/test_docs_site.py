"""The documentation site as readers get it: built by scripts/docs.sh (warnings are errors, so a broken
cross-reference or anchor between pages fails), its generated pages complete, the README's links alive,
and the built site searched in a real browser."""
import functools
import http.server
import re
import subprocess
import threading
from urllib.parse import unquote

import pytest
from browser import chromium, console_errors
from conftest import REPO

from tsmcli.cli import command
from tsmcli.presets import list_presets


@pytest.fixture(scope="module")
def site(module_dir):
    out = module_dir("docs") / "html"
    build = subprocess.run(["bash", str(REPO / "scripts/docs.sh"), str(out)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    return out


@pytest.mark.slow
def test_the_zoo_table_and_the_cli_reference_are_generated_whole(site):
    zoo = (site / "zoo.html").read_text()
    assert all(preset["name"] in zoo for preset in list_presets())
    assert "tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth" in zoo
    cli = (site / "_generated/cli.html").read_text()
    root = command()
    for name, sub in root.commands.items():
        assert f"tsm {name}" in cli, name
        for option in (p for p in sub.params if p.param_type_name == "option"):
            assert option.opts[0] in cli, (name, option.opts)


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_readme_leads_somewhere():
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = unquote(target).partition("#")
        assert (REPO / path).exists(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (REPO / path).read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, target


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_the_built_site_is_searched_in_a_real_browser(site, tmp_path):
    """Served over HTTP as any static host would serve it; Sphinx's search runs in the page."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    driver = chromium(tmp_path / "profile")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        driver.get(url + "/index.html")
        assert "tsm" in driver.title
        links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, ".sidebar-tree a")]
        assert any(link.endswith("own-videos.html") for link in links), links
        for word, page in (("webcam", "inference.html"), ("int8", "export.html"), ("SLURM", "training.html")):
            driver.get(f"{url}/search.html?q={word}")
            found = WebDriverWait(driver, 30).until(
                lambda d: [a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, "#search-results li a")])
            assert any(page in link for link in found), (word, found)
        assert not console_errors(driver), console_errors(driver)
    finally:
        driver.quit()
        server.shutdown()
