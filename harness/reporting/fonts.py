"""Class names in figures: drawn with an installed font that has their characters, or as plain labels.

Matplotlib's default font (DejaVu Sans) has no CJK characters, for instance; it then draws boxes and
warns once per glyph. Here, an installed font that has the missing characters joins Matplotlib's
fallback list; if none has them, those names are shown as "class 3" with one warning, and the real
names stay in every CSV and JSON file.
"""

import functools
import sys

import matplotlib
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

# Fonts that map every character to a placeholder box: they "have" everything and draw nothing useful.
PLACEHOLDER_FONTS = ("Last Resort",)


@functools.cache
def _characters(path):
    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _drawable(characters):
    """The code points the fonts Matplotlib uses now can draw."""
    families = matplotlib.rcParams["font.family"]
    paths = {font_manager.findfont(font_manager.FontProperties(family=[family]), fallback_to_default=True)
             for family in families}
    return set().union(*(_characters(path) for path in paths)) & characters


def _font_with(characters):
    """The name of an installed font that has all of `characters`, or None."""
    for entry in font_manager.fontManager.ttflist:
        if not entry.name.startswith(PLACEHOLDER_FONTS) and characters <= _characters(entry.fname):
            return entry.name
    return None


def drawable_names(class_names):
    """The class names as figures should show them (same order)."""
    needed = {ord(c) for name in class_names for c in name if not c.isspace()}
    missing = needed - _drawable(needed)
    if not missing:
        return list(class_names)
    font = _font_with(missing)
    if font is not None:
        matplotlib.rcParams["font.family"] = [*matplotlib.rcParams["font.family"], font]
        return list(class_names)
    shown = [f"class {index}" if {ord(c) for c in name} & missing else name for index, name in enumerate(class_names)]
    _warn_once(tuple(name for name, label in zip(class_names, shown) if name != label))
    return shown


@functools.cache
def _warn_once(names):
    listed = ", ".join(repr(name) for name in names[:3]) + (", ..." if len(names) > 3 else "")
    print(f"warning: no installed font can draw {len(names)} class name(s) ({listed}); figures label them "
          "'class <index>' and the CSV and JSON files keep the real names. Install a font that has them "
          "(e.g. Debian's fonts-noto-cjk) to see them in figures", file=sys.stderr)
