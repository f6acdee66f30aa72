"""Pictures drawn in the terminal (grader.learner.inline_images): which protocol a terminal gets,
and that each encoding carries the picture (decoded back here)."""

import base64
import io
import re

import numpy
import pytest

from grader.learner import inline_images

matplotlib = pytest.importorskip("matplotlib", reason="pictures need pip install 'fmgrade[pictures]'")


def _png(rgb):
    from matplotlib import image

    buffer = io.BytesIO()
    image.imsave(buffer, rgb, format="png")
    return buffer.getvalue()


QUADRANTS = numpy.zeros((12, 10, 3), dtype=numpy.uint8)
QUADRANTS[:6, :5] = (255, 0, 0)
QUADRANTS[:6, 5:] = (0, 255, 0)
QUADRANTS[6:, :5] = (0, 0, 255)
QUADRANTS[6:, 5:] = (255, 255, 255)


@pytest.mark.parametrize(
    "env, tty, expected",
    [
        ({"TERM": "xterm-kitty"}, True, "kitty"),
        ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, True, "kitty"),
        ({"TERM_PROGRAM": "WezTerm"}, True, "kitty"),
        ({"TERM_PROGRAM": "iTerm.app"}, True, "iterm2"),
        ({"LC_TERMINAL": "iTerm2"}, True, "iterm2"),
        ({"TERM": "foot"}, True, "sixel"),
        ({"TERM": "xterm-256color"}, True, None),
        ({"TERM": "xterm-kitty"}, False, None),  # piped: never an escape sequence
        ({"TERM": "xterm-256color", "FMGRADE_IMAGES": "sixel"}, False, "sixel"),
        ({"TERM": "xterm-kitty", "FMGRADE_IMAGES": "off"}, True, None),
    ],
)
def test_the_protocol_follows_what_the_terminal_says_of_itself(env, tty, expected):
    assert inline_images.detect(env, is_tty=tty) == expected


def test_kitty_sends_the_png_in_chunks_that_join_back_to_it():
    png = _png(numpy.random.default_rng(0).integers(0, 255, (80, 90, 3), dtype=numpy.uint8))
    sequence = inline_images.encode(png, "kitty")
    chunks = re.findall(r"\x1b_G([^;]*);([^\x1b]*)\x1b\\", sequence)
    assert len(chunks) > 1 and chunks[0][0] == "f=100,a=T,m=1" and chunks[-1][0] == "m=0"
    assert all(len(data) <= inline_images.CHUNK for _, data in chunks)
    assert base64.b64decode("".join(data for _, data in chunks)) == png


def test_iterm2_sends_the_png_with_its_size():
    png = _png(QUADRANTS)
    match = re.fullmatch(
        r"\x1b\]1337;File=inline=1;size=(\d+);preserveAspectRatio=1:([^\x07]*)\x07\n",
        inline_images.encode(png, "iterm2"),
    )
    assert match and int(match.group(1)) == len(png) and base64.b64decode(match.group(2)) == png


def _decode_sixel(sequence):
    """Pixels (as palette colour ids) of a sixel image, by the DEC rules this encoder uses."""
    body = sequence[sequence.index("q") + 1 : sequence.rindex("\x1b\\")]
    width, height = map(int, re.match(r'"1;1;(\d+);(\d+)', body).groups())
    palette = {int(c): tuple(map(int, rgb)) for c, *rgb in re.findall(r"#(\d+);2;(\d+);(\d+);(\d+)", body)}
    body = re.sub(r'"1;1;\d+;\d+|#\d+;2;\d+;\d+;\d+', "", body)
    pixels = numpy.full((height + 6, width), -1)
    top = 0
    for band in body.split("-")[:-1]:
        for row in band.split("$"):
            colour = int(re.match(r"#(\d+)", row).group(1))
            x = 0
            for repeat, char in re.findall(r"(?:!(\d+))?([?-~])", row[len(f"#{colour}") :]):
                for _ in range(int(repeat or 1)):
                    bits = ord(char) - 63
                    for k in range(6):
                        if bits >> k & 1:
                            pixels[top + k, x] = colour
                    x += 1
        top += 6
    return pixels[:height], palette


def test_sixel_draws_every_pixel_in_its_colour():
    pixels, palette = _decode_sixel(inline_images.encode(_png(QUADRANTS), "sixel"))
    assert pixels.shape == (12, 10) and (pixels >= 0).all()
    colours = {(y, x): palette[pixels[y, x]] for y, x in ((0, 0), (0, 9), (11, 0), (11, 9))}
    assert colours == {(0, 0): (100, 0, 0), (0, 9): (0, 100, 0), (11, 0): (0, 0, 100), (11, 9): (100, 100, 100)}


def test_sixel_shrinks_a_wide_picture_to_the_width_asked():
    wide = numpy.zeros((30, 1000, 3), dtype=numpy.uint8)
    pixels, _ = _decode_sixel(inline_images.encode(_png(wide), "sixel", width=400))
    assert pixels.shape[1] <= 400


def test_an_unknown_protocol_is_named():
    with pytest.raises(ValueError, match="no such image protocol: 'braille'"):
        inline_images.encode(b"", "braille")
