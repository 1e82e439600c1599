"""Losses: the COMET objective and its building blocks."""

from keras_compattr.losses.area_control import AreaMultiplier
from keras_compattr.losses.comet import CometObjective
from keras_compattr.losses.deletion import deletion_term
from keras_compattr.losses.deletion import top_fraction_masks
from keras_compattr.losses.objective import DETECTOR_TERMS
from keras_compattr.losses.objective import HINGE_REDUCTIONS
from keras_compattr.losses.objective import batch_chance_hinge
from keras_compattr.losses.objective import chance_hinge
from keras_compattr.losses.objective import comet_objective
from keras_compattr.losses.objective import log_probabilities
from keras_compattr.losses.objective import per_sample_cross_entropy
from keras_compattr.losses.objective import total_variation
