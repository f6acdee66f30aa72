"""One sheet of every `fmgrade show` picture: the reference solution beside a known mistake.

    python bench/picture_sheet.py [OUT.png]     (default: picture_sheet.png in the current folder)

Each row is one picture; the left half is drawn from solutions/<topic>.py, the right half from
the same file with one mistake of tests/mutants/<topic>/mutants.yml applied. The code runs in
this process (trusted files), so the sheet shows the pictures, not the sandbox. Prints how long
gathering and drawing took, as a share of the whole.
"""

import sys
import tempfile
import time
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from grader import course as course_mod
from grader.instructor import mutants as mutants_mod
from grader.learner import pictures

ROOT = Path(__file__).resolve().parents[1]
MISTAKES = {  # picture -> the known mistake drawn beside the solution
    "attention-weights": "mask_after_softmax",
    "positional-encoding": "sin_cos_swapped",
    "rate": "rate_max_not_min",
    "top-k-top-p": "top_k_smallest",
    "rope-relative": "rope_only_queries_relative",
    "compute-optimal": "optimum_exponents_swapped",
    "ppo-clipped-objective": "actor_ratio_not_clipped",
}


def main(out):
    course = course_mod.load(ROOT)
    scratch = Path(tempfile.mkdtemp(prefix="fmgrade-sheet-"))
    chosen = [p for p in pictures.PICTURES if p.name in MISTAKES]
    heights = [2 if p.name == "top-k-top-p" else 1 for p in chosen]
    figure = Figure(figsize=(30, 4.2 * sum(heights)), layout="constrained")
    FigureCanvasAgg(figure)
    rows = figure.subfigures(len(chosen), 1, height_ratios=heights)
    gathering = drawing = 0.0
    for picture, row in zip(chosen, rows):
        mutant_id = MISTAKES[picture.name]
        (mutant,) = [m for m in mutants_mod.load(course, picture.topic) if m.id == mutant_id]
        sources = {
            "solution": course.solution_path(picture.topic),
            f"mistake {mutant_id}": mutants_mod.write_mutant(course, picture.topic, mutant, scratch / mutant_id),
        }
        expected = pictures.expected_answers(course, picture.topic)
        for (label, path), half in zip(sources.items(), row.subfigures(1, 2)):
            start = time.perf_counter()
            drawn = pictures.gather(
                picture,
                pictures.TrustedModule.from_file(path, f"sheet_{picture.topic}_{mutant_id}_{label[:3]}"),
                expected,
            )
            gathering += time.perf_counter() - start
            start = time.perf_counter()
            if drawn.problem:
                half.suptitle(pictures.plain(f"{picture.name}, {label}: no picture: {drawn.problem}"))
            else:
                pictures.render(half, drawn, caption=f" ({label})")
            drawing += time.perf_counter() - start
    start = time.perf_counter()
    figure.savefig(out, dpi=50)
    saving = time.perf_counter() - start
    total = gathering + drawing + saving
    print(f"wrote {out}: {len(chosen)} pictures, solution and mistake each")
    print(
        f"share of the time: gathering {gathering / total:.2f}, drawing {drawing / total:.2f}, saving {saving / total:.2f}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("picture_sheet.png"))
