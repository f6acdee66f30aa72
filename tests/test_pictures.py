"""`fmgrade show`: each picture drawn from the solution and from a known mistake, asserting on
the data drawn (not on pixels); the command through CliRunner; the notebook's inline pictures."""

import base64
import math
import re
import shutil
import sys

import numpy
import pytest
from click.testing import CliRunner

from grader import cli
from grader import course as course_mod
from grader.instructor import mutants as mutants_mod
from grader.learner import pictures

pytest.importorskip("matplotlib")

ROOT = course_mod.find_root(__file__)


@pytest.fixture(scope="module")
def course():
    return course_mod.load(ROOT)


def gathered(course, tmp_path, name, mutant_id=None):
    """The data of picture `name` from the solution, or from the known mistake `mutant_id`."""
    (picture,) = [p for p in pictures.PICTURES if p.name == name]
    path = course.solution_path(picture.topic)
    if mutant_id is not None:
        (mutant,) = [m for m in mutants_mod.load(course, picture.topic) if m.id == mutant_id]
        path = mutants_mod.write_mutant(course, picture.topic, mutant, tmp_path / mutant_id)
    module = pictures.TrustedModule.from_file(path, f"pictures_{picture.topic}_{mutant_id or 'solution'}")
    drawn = pictures.gather(picture, module, pictures.expected_answers(course, picture.topic))
    assert not drawn.problem, drawn.problem
    return drawn


# --- each picture: the solution matches, a known mistake shows ------------------------------------


def test_attention_weights_of_the_solution_match_and_masked_keys_get_nothing(course, tmp_path):
    data = gathered(course, tmp_path, "attention-weights").data
    numpy.testing.assert_allclose(data["yours"], data["expected"], atol=1e-6)
    assert data["hidden"].sum() == 13  # causal (10 above the diagonal) + padded keys 3, 4 of queries 3, 4
    assert numpy.all(data["yours"][data["hidden"]] < 1e-6)
    numpy.testing.assert_allclose(data["yours"].sum(-1), 1.0, atol=1e-6)


def test_attention_weights_masked_after_the_softmax_no_longer_sum_to_one(course, tmp_path):
    data = gathered(course, tmp_path, "attention-weights", "mask_after_softmax").data
    assert numpy.all(data["yours"][data["hidden"]] == 0)  # zeros where masked, as expected...
    assert numpy.all(data["yours"].sum(-1)[1:] < 0.99)  # ...but the rest was never renormalised
    assert numpy.abs(data["yours"] - data["expected"]).max() > 0.1


def test_positional_encoding_table_matches_and_a_swap_shows_as_columns_exchanged(course, tmp_path):
    data = gathered(course, tmp_path, "positional-encoding").data
    assert data["yours"].shape == data["expected"].shape == (60, 16)
    numpy.testing.assert_allclose(data["yours"], data["expected"], atol=1e-5)
    wrong = gathered(course, tmp_path, "positional-encoding", "sin_cos_swapped").data
    numpy.testing.assert_allclose(wrong["yours"][:, 0::2], wrong["expected"][:, 1::2], atol=1e-5)
    assert numpy.abs(wrong["yours"] - wrong["expected"]).max() > 0.5


def test_rate_curve_passes_through_the_recorded_points(course, tmp_path):
    data = gathered(course, tmp_path, "rate").data
    assert list(data["marked_steps"]) == [0, 1, 2000, 4000, 16000]
    numpy.testing.assert_allclose(data["yours_marked"], data["expected"], rtol=1e-9)
    assert data["expected"][3] == pytest.approx(6.98771e-4, rel=1e-5)  # the paper's peak
    assert data["steps"][0] == 1 and data["steps"][-1] == 20000 and len(data["steps"]) == len(data["yours"])
    assert int(numpy.argmax(data["yours"])) == int(numpy.searchsorted(data["steps"], 4000))


def test_rate_with_max_not_min_keeps_growing_after_the_warm_up(course, tmp_path):
    data = gathered(course, tmp_path, "rate", "rate_max_not_min").data
    assert data["yours"][-1] > data["yours"][int(numpy.searchsorted(data["steps"], 4000))]
    assert data["yours_marked"][-1] > 2 * data["expected"][-1]


def test_rate_without_the_step_zero_guard_has_no_value_at_zero(course, tmp_path):
    data = gathered(course, tmp_path, "rate", "rate_no_step_zero_guard").data
    assert math.isnan(data["yours_marked"][0]) and not math.isnan(data["expected"][0])
    numpy.testing.assert_allclose(data["yours_marked"][1:], data["expected"][1:], rtol=1e-9)


def _kept(mask):
    return set(numpy.flatnonzero(mask).tolist())


def test_filtering_of_the_solution_keeps_the_recorded_sets(course, tmp_path):
    top_k, top_p = gathered(course, tmp_path, "top-k-top-p").data["rows"]
    assert _kept(top_k["yours_kept"]) == _kept(top_k["expected_kept"]) == {1, 2, 4}
    assert _kept(top_p["yours_kept"]) == _kept(top_p["expected_kept"]) == {1, 2, 4}
    for row in (top_k, top_p):
        numpy.testing.assert_allclose(row["yours"], row["expected"], atol=1e-6)
        assert row["before"].sum() == pytest.approx(1.0) and row["yours"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "mutant_id, row, kept",
    [("top_k_smallest", 0, {0, 2, 3}), ("top_p_drops_the_crossing_token", 1, {1, 2})],
)
def test_filtering_mistakes_show_the_wrong_kept_set(course, tmp_path, mutant_id, row, kept):
    rows = gathered(course, tmp_path, "top-k-top-p", mutant_id).data["rows"]
    assert _kept(rows[row]["yours_kept"]) == kept != _kept(rows[row]["expected_kept"])
    assert numpy.abs(rows[row]["yours"] - rows[row]["expected"]).max() > 0.1


def test_rope_scores_of_the_solution_depend_on_the_distance_only(course, tmp_path):
    data = gathered(course, tmp_path, "rope-relative").data
    assert data["yours"].shape == (10, 10)
    numpy.testing.assert_allclose(data["yours"], data["expected"], atol=1e-5)
    assert numpy.ptp(data["yours"]) > 1  # the scores do change with the distance


def test_rope_on_the_queries_only_shows_scores_that_depend_on_the_position(course, tmp_path):
    data = gathered(course, tmp_path, "rope-relative", "rope_only_queries_relative").data
    assert numpy.abs(data["yours"] - data["expected"]).max() > 0.5


def test_scaling_frontier_of_the_solution_meets_the_recorded_optima(course, tmp_path):
    data = gathered(course, tmp_path, "compute-optimal").data
    numpy.testing.assert_allclose(data["yours"], data["expected"], rtol=1e-9)
    numpy.testing.assert_allclose(6 * data["frontier"].prod(axis=1), data["budgets"], rtol=1e-9)
    assert data["loss"].shape == (41, 41) and data["chinchilla"][2] == pytest.approx(1.9366, abs=1e-4)
    # the optimum lies on the lowest contour its IsoFLOP line reaches: a coarse check on the grid
    assert numpy.all(numpy.diff(data["frontier"][:, 0]) > 0)


def test_scaling_with_swapped_exponents_misses_the_optima(course, tmp_path):
    data = gathered(course, tmp_path, "compute-optimal", "optimum_exponents_swapped").data
    ratio = data["yours"][:, 0] / data["expected"][:, 0]
    assert numpy.all(numpy.abs(numpy.log10(ratio[1:])) > 0.1)  # off by a factor that grows with the budget


def test_ppo_objective_of_the_solution_is_flat_beyond_the_clip(course, tmp_path):
    data = gathered(course, tmp_path, "ppo-clipped-objective").data
    numpy.testing.assert_allclose(data["yours"], data["expected"], atol=1e-6)
    ratios = data["ratios"]
    assert numpy.ptp(data["yours"][0][ratios >= 1.2]) < 1e-6 < numpy.ptp(data["yours"][0][ratios < 1.2])
    assert numpy.ptp(data["yours"][1][ratios <= 0.8]) < 1e-6 < numpy.ptp(data["yours"][1][ratios > 0.8])


@pytest.mark.parametrize("mutant_id", ["actor_ratio_not_clipped", "actor_min_instead_of_max"])
def test_ppo_mistakes_keep_moving_beyond_the_clip(course, tmp_path, mutant_id):
    data = gathered(course, tmp_path, "ppo-clipped-objective", mutant_id).data
    ratios = data["ratios"]
    off = data["yours"][0] - data["expected"][0]  # advantage +1: a larger ratio should stop paying
    assert numpy.all(off[ratios <= 1.2] == 0) and off[-1] == pytest.approx(-0.3, abs=1e-4)


# --- drawing: what is on the canvas is the data ----------------------------------------------------


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    FigureCanvasAgg(figure)
    return figure


def test_heat_maps_draw_yours_expected_and_their_difference(course, tmp_path):
    data = gathered(course, tmp_path, "attention-weights", "mask_after_softmax").data
    figure = _figure()
    pictures.draw_heatmaps(figure, data)
    images = [ax.images[0].get_array() for ax in figure.axes if ax.images]
    numpy.testing.assert_array_equal(images[0], data["yours"])
    numpy.testing.assert_array_equal(images[1], data["expected"])
    numpy.testing.assert_allclose(images[2], data["yours"] - data["expected"])
    marked = figure.axes[0].collections[0].get_offsets()  # the x marks on masked positions
    assert {(int(c), int(r)) for c, r in marked} == {(c, r) for r, c in zip(*numpy.nonzero(data["hidden"]))}


def test_filtering_bars_are_the_probabilities_with_wrong_tokens_in_red(course, tmp_path):
    data = gathered(course, tmp_path, "top-k-top-p", "top_k_smallest").data
    figure = _figure()
    pictures.draw_filtering(figure, data)
    yours_axes = figure.axes[2]
    bars, outlines = yours_axes.patches[:5], yours_axes.patches[5:]
    numpy.testing.assert_allclose([bar.get_height() for bar in bars], data["rows"][0]["yours"])
    red = {i for i, bar in enumerate(bars) if bar.get_facecolor()[0] > 0.8}
    assert red == {0, 1, 3, 4}  # {0, 3} kept and {1, 4} dropped wrongly; token 2 is right either way
    # the wrongly dropped tokens 1 and 4 are outlined at the height they should have
    assert [round(o.get_x() + o.get_width() / 2) for o in outlines] == [1, 4]
    numpy.testing.assert_allclose([o.get_height() for o in outlines], data["rows"][0]["expected"][[1, 4]])
    assert not any(o.get_fill() for o in outlines)


def test_every_picture_is_saved_as_a_png_named_after_its_topic(course, tmp_path):
    for picture in pictures.PICTURES:
        drawn = gathered(course, tmp_path, picture.name)
        path = pictures.draw(drawn, tmp_path / "out")
        assert path == tmp_path / "out" / f"{picture.topic}-{picture.name}.png" == drawn.path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learner_text_is_made_plain_and_short():
    text = pictures.safe_text("$\\frac{a}{b}$\x1b[31m\nred" + "x" * 500)
    assert "\x1b" not in text and "\n" not in text and len(text) == pictures.MAX_TEXT
    assert text.startswith("$\\frac{a}{b}$?[31m red")
    assert pictures.plain("a $x^2$ b") == "a \\$x^2\\$ b"  # in a title, no mathtext


def test_a_result_of_the_wrong_type_or_shape_is_a_problem_not_a_crash(course):
    (picture,) = [p for p in pictures.PICTURES if p.name == "positional-encoding"]

    class Odd:
        class PositionalEncoding:
            def __init__(self, *args, **kwargs):
                self.pe = "a table"

    drawn = pictures.gather(picture, Odd(), pictures.expected_answers(course, "attention"))
    assert drawn.problem == "PositionalEncoding(16, 0.0, max_len=60).pe returned a str, not a tensor or a number"


def test_a_rate_that_returns_many_values_is_a_problem(course):
    (picture,) = [p for p in pictures.PICTURES if p.name == "rate"]

    class Vector:
        @staticmethod
        def rate(step, model_size, factor, warmup):
            return numpy.ones(3)

    drawn = pictures.gather(picture, Vector(), pictures.expected_answers(course, "attention"))
    assert drawn.problem == "rate(1, ...) returned 3 values (shape (3,)), not one number"


def test_nan_and_inf_in_a_heat_map_still_draw(course, tmp_path):
    (picture,) = [p for p in pictures.PICTURES if p.name == "attention-weights"]
    data = {"yours": numpy.full((5, 5), numpy.nan), "expected": numpy.eye(5), "xlabel": "k", "ylabel": "q"}
    data["yours"][0, 0] = numpy.inf
    path = pictures.draw(pictures.Drawn(picture, data), tmp_path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_pictures_for_names_what_exists(course):
    assert [p.exercise for p in pictures.pictures_for(course, "attention")] == [
        "attention",
        "positional_encoding",
        "rate",
    ]
    with pytest.raises(course_mod.CourseError, match="has no picture; pictures: attention, positional_encoding"):
        pictures.pictures_for(course, "attention", "layer_norm")
    with pytest.raises(
        course_mod.CourseError, match="no pictures yet; topics with pictures: attention, deepspeed_chat, gpt3"
    ):
        pictures.pictures_for(course, "survey")


# --- the command and the notebook --------------------------------------------------------------------


@pytest.fixture
def run(course_copy, monkeypatch):
    monkeypatch.chdir(course_copy)
    return lambda *args: CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def test_show_without_matplotlib_says_how_to_install_it(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    result = run("show", "attention")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {pictures.INSTALL_HINT}"]


def test_show_of_a_topic_without_pictures_is_a_usage_error(run):
    result = run("show", "survey")
    assert (
        result.exit_code == 2
        and "topics with pictures: attention, deepspeed_chat, gpt3, llama, scaling" in result.output
    )


def test_show_on_the_stub_says_why_there_is_no_picture(run, course_copy):
    result = run("show", "gpt3")
    assert result.exit_code == 1
    assert result.output.startswith("gpt3/filter_logits: no picture: your code raised NotImplementedError")
    assert not (course_copy / ".fmgrade" / "pictures").exists()


@pytest.mark.slow
def test_show_runs_the_learners_file_in_the_sandbox_and_prints_each_path(run, course_copy):
    shutil.copy(course_copy / "solutions" / "attention.py", course_copy / "exercises" / "attention.py")
    result = run("show", "attention", "rate", "--images", "kitty")
    assert result.exit_code == 0, result.output
    path, drawn = result.output.split("\n", 1)
    assert path == ".fmgrade/pictures/attention-rate.png"
    png = (course_copy / ".fmgrade" / "pictures" / "attention-rate.png").read_bytes()
    assert png[:4] == b"\x89PNG"
    sent = "".join(re.findall(r"\x1b_G[^;]*;([^\x1b]*)\x1b\\", drawn))
    assert base64.b64decode(sent) == png  # and drawn in the terminal too


def test_the_notebook_shows_pictures_inline_and_escapes_captions(course, tmp_path):
    drawn = gathered(course, tmp_path, "rate")
    pictures.draw(drawn, tmp_path)
    odd = pictures.Drawn(pictures.PICTURES[0], problem="your code raised ValueError: <b>&</b>")
    shown = pictures.ShownPictures([drawn, odd])
    page = shown._repr_html_()
    assert page.count('<img src="data:image/png;base64,iVBORw0KGgo') == 1
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in page and "<b>" not in page
    assert repr(shown).splitlines() == [
        str(tmp_path / "attention-rate.png"),
        "attention/attention: no picture: your code raised ValueError: <b>&</b>",
    ]


def test_the_magic_dispatches_show(course_copy, monkeypatch):
    pytest.importorskip("IPython")
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "grader")
    monkeypatch.chdir(course_copy)
    with pytest.raises(UsageError, match="usage: %fmgrade show TOPIC"):
        shell.run_line_magic("fmgrade", "show")
    with pytest.raises(UsageError, match="no pictures yet"):
        shell.run_line_magic("fmgrade", "show survey")


# --- the class report ------------------------------------------------------------------------------------


def test_the_class_report_draws_the_most_made_mistake_beside_the_expected(course, monkeypatch):
    from grader.instructor.classreport import mistake_pictures

    seen = []
    gather = pictures.gather
    monkeypatch.setattr(pictures, "gather", lambda *args: seen.append(gather(*args)) or seen[-1])
    page = mistake_pictures.picture_html(course, "attention", "attention", "mask_after_softmax")
    assert page.count('<img src="data:image/png;base64,iVBORw0KGgo') == 1
    assert "What mask_after_softmax returns (yours) beside the expected result" in page
    (drawn,) = seen  # the data drawn is the mistake's: rows of p_attn no longer sum to 1
    assert numpy.all(drawn.data["yours"].sum(-1)[1:] < 0.99)
    assert mistake_pictures.picture_html(course, "attention", "layer_norm", "biased_std") == ""  # no picture
    assert mistake_pictures.picture_html(course, "attention", "attention", "no_such_mistake") == ""
    assert mistake_pictures.picture_html(None, "attention", "attention", "mask_after_softmax") == ""
