"""The book end to end: every section notebook runs with the smoke profile through papermill, the
book builds strictly, and the intro page renders in a real browser (maths typeset, images loaded).
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pandas as pd
import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
                  "--allow-file-access-from-files", "--virtual-time-budget=15000"]


def execute(notebook: Path, out: Path, **parameters) -> None:
    pm.execute_notebook(str(notebook), str(out), parameters=parameters, kernel_name="python3",
                        cwd=str(ROOT / "notebooks"), progress_bar=False)


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> Path:
    """A copy of the book with every section executed under the smoke profile, built strictly."""
    assert NOTEBOOKS, "no section notebooks found"
    book = tmp_path_factory.mktemp("smoke-book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, book / name)
    shutil.copytree(ROOT / "book", book / "book")
    for nb in NOTEBOOKS:
        execute(nb, book / "book" / "sections" / nb.name, profile="smoke", results_dir=str(book / "results"))
    build = subprocess.run([str(BIN / "jupyter-book"), "build", str(book), "-W", "-n", "--keep-going"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    return book


def test_every_section_in_the_toc_is_a_notebook_we_execute(smoke_book):
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"book/sections/(\S+)", toc))
    assert listed == {nb.stem for nb in NOTEBOOKS}


def glued(notebook: Path) -> dict:
    """Values glued by myst-nb in an executed notebook: name -> text/plain."""
    out = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        for o in cell.get("outputs", []):
            record = o.get("metadata", {}).get("scrapbook", {})
            if "name" in record:
                out[record["name"]] = o["data"].get(record["mime_prefix"] + "text/plain")
    return out


def test_method_results_file_matches_glued_numbers(smoke_book):
    table = pd.read_csv(smoke_book / "results" / "method_demo.csv")
    meta = json.loads((smoke_book / "results" / "method_demo.json").read_text())
    assert meta["settings"]["profile"]["name"] == "smoke" and "torch" in meta["environment"]
    assert not table.isna().any().any()
    assert set(table.test_set) == {"noise", "black", "white"} and set(table.padding) == {0, 1}
    g = glued(smoke_book / "book" / "sections" / "01_method.ipynb")
    noise = table[table.test_set == "noise"].set_index("padding")["spc_mean"]
    assert float(g["demo_spc_first_pad"]) == pytest.approx(noise[0], abs=1e-9)
    assert float(g["demo_spc_last_pad"]) == pytest.approx(noise[1], abs=1e-9)
    assert float(g["demo_loss_last"]) < float(g["demo_loss_first"])  # the training loss fell


def test_unknown_profile_stops_the_notebook_with_a_clear_error(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        execute(NOTEBOOKS[0], tmp_path / "bad.ipynb", profile="fast", results_dir=str(tmp_path))
    assert err.value.ename == "ValueError" and "valid profiles: smoke, cpu, paper" in err.value.evalue
    assert err.value.exec_count <= 3  # stopped in its first cells, before any work


CHECK_SCRIPT = """
<script>
window.addEventListener('load', () => setTimeout(() => {
  const imgs = Array.from(document.images);
  const r = {images: imgs.length,
             broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
             math: document.querySelectorAll('mjx-container').length,
             raw_tex: document.querySelectorAll('.math:not(:has(mjx-container))').length};
  const pre = document.createElement('pre'); pre.id = 'page-check'; pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
}, 3000));
</script>
"""


def test_intro_page_renders_maths_and_loads_every_image(smoke_book):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed for this test: `make test` installs it (apt-get install chromium)"
    page = smoke_book / "_build" / "html" / "book" / "intro.html"
    checked = page.with_name("intro_check.html")  # same folder, so relative links resolve as on the real page
    checked.write_text(page.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    with tempfile.TemporaryDirectory() as profile_dir:
        dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--dump-dom",
                              checked.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="page-check">(.*?)</pre>', dom)
    assert found, "the page's check script did not run"
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result["images"] >= 1 and result["broken"] == []
    assert result["math"] >= 2 and result["raw_tex"] == 0


def test_data_section_counts_match_its_results_file(smoke_book):
    table = pd.read_csv(smoke_book / "results" / "photo_pool.csv")
    g = glued(smoke_book / "book" / "sections" / "02_data_encoders.ipynb")
    assert int(g["n_photos"]) == table.photos.sum() >= 300
    assert int(g["n_train"]) == table.train.sum() and int(g["n_test"]) == table.test.sum()
    taps = pd.read_csv(smoke_book / "results" / "encoder_taps.csv")
    assert taps[taps.encoder == "vgg16"].channels.sum() == 1472
    assert set(taps.encoder) == {"none", "vgg16", "vgg16_nopad", "mobilenet_v2", "resnet152"}
