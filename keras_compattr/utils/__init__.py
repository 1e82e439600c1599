"""Small helpers shared across keras_compattr."""

from keras_compattr.utils.images import to_unit_range
from keras_compattr.utils.images import to_unit_range_numpy
