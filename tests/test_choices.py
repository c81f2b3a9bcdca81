"""One check for a setting's named values, read from the signature's ``Literal``."""

import inspect
import re
from typing import Literal, get_type_hints

import pytest

from thinkspace.utils.choices import check_choice, choices_of

Mode = Literal["crop", "pad", "resize"]


def test_a_literal_value_passes_and_another_is_named_with_the_choices():
    check_choice("VGGTTeacher.mode", "pad", Mode)
    with pytest.raises(ValueError, match=re.escape("VGGTTeacher.mode must be 'crop', 'pad' or 'resize', got 'fit'")):
        check_choice("VGGTTeacher.mode", "fit", Mode)
    with pytest.raises(ValueError, match=re.escape("x must be 'a' or 'b', got 3")):
        check_choice("x", 3, ("a", "b"))


@pytest.mark.parametrize("path,argument", [
    ("thinkspace.objectives.latent3d.LatentAlignment", "loss"),
    ("thinkspace.objectives.latent3d.LatentAlignment", "reduction"),
    ("thinkspace.cues.pointmap.PointMapCue", "quantity"),
    ("thinkspace.teachers.vggt.VGGTTeacher", "mode"),
    ("thinkspace.teachers.vggt.VGGTTeacher", "dtype"),
    ("thinkspace.data.datasets.synthetic.SyntheticSpatial", "kind"),
    ("thinkspace.data.datasets.synthetic.SyntheticSpatial", "split"),
    ("thinkspace.data.datasets.synthetic.SyntheticSpatial", "viewpoint"),
    ("thinkspace.backbones.composed.backbone.ComposedVLM", "stage"),
])
def test_the_error_lists_exactly_the_signatures_choices(path, argument):
    """The config schema (the signature, which jsonargparse reads) and the check name the same values."""
    import importlib

    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    choices = choices_of(get_type_hints(cls.__init__)[argument])
    assert choices and all(isinstance(c, str) for c in choices)
    listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
    assert inspect.signature(cls.__init__).parameters[argument].default in choices
    with pytest.raises(ValueError, match=re.escape(f"{argument} must be {listed}, got 'nope'")):
        if name == "ComposedVLM":
            cls("tiny:composed", **{argument: "nope"})
        else:
            cls(**{argument: "nope"})
