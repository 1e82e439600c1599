"""The defaults that README and `docs/method.md` state, read from the code.

Each claim about a default is rebuilt from `inspect.signature` (or from
what `compile()` makes) and looked up in the text, so that a changed
default fails here until the docs say it.
"""

import inspect
import pathlib
import re

import keras

import keras_compattr as kca
from keras_compattr.losses import CometObjective
from keras_compattr.losses.objective import detector_term
from tests.conftest import tiny_model

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = " ".join((ROOT / "README.md").read_text().split())
METHOD = " ".join((ROOT / "docs" / "method.md").read_text().split())


def _defaults(callable_):
    return {
        name: parameter.default
        for name, parameter in inspect.signature(callable_).parameters.items()
    }


def _number(value):
    return f"{value:g}"


def test_the_objective_defaults_are_the_model_defaults():
    model = _defaults(kca.ComprehensiveAttributionModel)
    objective = _defaults(CometObjective)
    # The short form leaves out the deletion term's shares (CometObjective's
    # docs say: they are set with `objective=`).
    assert "deletion_fractions" not in model
    del objective["deletion_fractions"]
    for name, value in objective.items():
        assert model[name] == value, name


def test_readme_states_the_defaults_of_the_code():
    defaults = _defaults(CometObjective)
    a, g, b = (
        _number(defaults[n])
        for n in ("detector_weight", "margin", "area_weight")
    )
    assert f"(`a = {a}`, `g = {g}`, `b = {b}`, AdamW" in README
    assert f'the default is `area_budget="{defaults["area_budget"]}"`' in (
        README
    )
    default = CometObjective()
    assert f'`detector_term="{default.detector_term}"`' in README
    assert f'`hinge_reduction="{default.hinge_reduction}"`' in README
    # The reference's detector term comes back with the fixed budget.
    assert CometObjective(area_budget=0.6).detector_term == "hinge"
    assert "`area_budget=0.6` restores the paper's fixed budget" in README
    assert "except the area term and the detector term" in README


def test_method_states_the_defaults_of_the_code():
    defaults = _defaults(CometObjective)
    a, g, b = (
        _number(defaults[n])
        for n in ("detector_weight", "margin", "area_weight")
    )
    assert (
        f"Defaults: `a = detector_weight = {a}`, `g = margin = {g}`, "
        f'`b = area_weight = {b}`, `area_budget="{defaults["area_budget"]}"`'
    ) in METHOD
    default = CometObjective()
    row = re.search(
        r'\| `"chance_hinge"` \(default with [^|]*\| ([^|]*)\|', METHOD
    )
    assert row is not None
    assert default.detector_term == "chance_hinge"
    assert default.hinge_reduction == "batch"
    assert (
        "`max(log(1 - 1/K) - log(1 - mean_i p_i), 0)` on the batch-mean "
        'probability (`hinge_reduction="batch"`, the default)'
    ) in row.group(1)
    tolerance = _defaults(kca.losses.AreaMultiplier)["tolerance"]
    assert f"(default {_number(tolerance * 100)} points)" in METHOD


def test_method_states_the_gradient_calls_the_default_makes():
    # The default term does not depend on the predictor: one combined
    # gradient call serves both groups.
    assert not detector_term(CometObjective().detector_term).uses_predictor
    assert detector_term("hinge").uses_predictor
    assert 'a term that does not (`"chance_hinge"`, the default, ' in METHOD
    assert "**one** combined gradient call gives both groups" in METHOD


def test_docs_state_the_default_optimizer_of_compile():
    model = tiny_model()
    model.compile()
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    lr = f"{float(optimizer.learning_rate):.0e}".replace("e-0", "e-")
    decay = _number(round(float(optimizer.weight_decay), 6))
    text = f"AdamW with learning rate {lr} and weight decay {decay}"
    assert text in README
    assert text in METHOD


def test_docs_state_the_judges_default_erosion():
    erosion = _defaults(kca.models.DetectorHardening)["erosion"]
    hardening = kca.models.DetectorHardening()
    pixels = hardening.erosion_pixels(48, 48)
    assert (
        f'**The judge sees the mask eroded** (`DetectorHardening(erosion="'
        f'{erosion}")`, the default)' in METHOD
    )
    assert f"so {pixels} at 48 and 64 px" in METHOD
    assert hardening.erosion_pixels(48, 48, area_budget=0.2) == 0
    assert "With a fixed budget it is 0" in METHOD
    assert f'(`DetectorHardening(erosion="{erosion}")`)' in README
