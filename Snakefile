# The book's workflow: one rule per page, each running its notebook with papermill.
#
#   snakemake --cores 2 --rerun-triggers params input code software-env      (what `make book` runs)
#   snakemake -n                                                             (what would run, and why)
#   snakemake --config profile=paper --cores 16 --resources gpu=1            (a GPU box)
#   snakemake --workflow-profile workflow/profiles/slurm                     (a SLURM cluster, one GPU per page)
#
# A page re-runs when its notebook, a library file it imports, its parameters or a page it reads
# changed (a digest in its params), never because of a file's time; a fresh clone has no run
# markers (.pipeline/, not committed), so its first `make book` runs every page. Each page uses
# `threads` cores (torch's threads); pages that do not read each other run side by side.

from pathlib import Path

from poslib import pipeline

PROFILE = config.get("profile", "cpu")
RESULTS = Path(config.get("results", "results")).resolve()
SECTIONS = config.get("sections", "book/sections")
RESUME = str(config.get("resume", True)).lower() in ("1", "true", "yes")
THREADS = int(config.get("threads_per_page", 2))
GPUS = int(config.get("gpus_per_page", 0))
MARKERS = f"{config.get('markers', '.pipeline')}/{PROFILE}"
OUT = RESULTS if PROFILE == "cpu" else RESULTS / PROFILE  # poslib.results.results_folder's rule
PAGES = [p for p in pipeline.pages() if p in config.get("pages", pipeline.pages())]


def marker(page):
    return f"{MARKERS}/{page}.done"


rule all:
    input:
        [marker(p) for p in PAGES],


for _page in PAGES:
    _resume = f"-p resume {RESUME}" if pipeline.has_parameter(_page, "resume") else ""

    rule:
        name:
            f"page_{_page}"
        input:
            notebook=f"notebooks/{_page}.ipynb",
            library=pipeline.sources(_page),
            upstream=[marker(p) for p in pipeline.READS.get(_page, []) if p in PAGES],
        output:
            page=f"{SECTIONS}/{_page}.ipynb",
            results=[str(OUT / f) for f in pipeline.writes(_page)],
            marker=marker(_page),
        params:
            digest=pipeline.digest(_page, profile=PROFILE, resume=RESUME),
            resume=_resume,
        threads: THREADS
        resources:
            gpu=GPUS,
        log:
            f"{MARKERS}/{_page}.log",
        shell:
            "OMP_NUM_THREADS={threads} TQDM_DISABLE=1 papermill {input.notebook} {output.page} -k python3"
            " --cwd notebooks -p profile " + PROFILE + " -p results_dir " + str(RESULTS) + " {params.resume} > {log} 2>&1"
            " && python -m poslib.pages {output.page} >> {log} 2>&1"
            " && date -u +%FT%TZ > {output.marker}"
