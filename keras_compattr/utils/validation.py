"""Input checks: bad images, labels or datasets get a clear error early.

`ComprehensiveAttributionModel.fit`, `evaluate`, `predict` and `explain`
run these checks on the host before any graph is built or traced, so a
mistake in the data is reported as a `ValueError` or `TypeError` that
names the problem and its fix, instead of as a shape error deep inside a
compiled training step (or, worse, as a silently wrong result).

What is checked:

- arrays and tensors: fully (rank, channels, size, dtype, NaN or infinite
  pixels, float pixels far outside `[0, 1]`, labels);
- `tf.data.Dataset`: cheaply, from `element_spec` only (structure, rank,
  static sizes and dtypes); the data itself is not read;
- `keras.utils.PyDataset`: the first batch, fully;
- Python generators: the first batch fully, at once, and every later
  batch's shape and dtype lazily, as training reads them.

The checks live by concern: `keras_compattr.utils.image_checks`,
`keras_compattr.utils.labels`, `keras_compattr.utils.data_checks` (arrays,
datasets, `PyDataset`s and generators) and
`keras_compattr.utils.argument_checks` (numbers and fill values of the
explainers and metrics). This module gathers their names.
"""

from keras_compattr.utils.argument_checks import check_fill
from keras_compattr.utils.argument_checks import check_number
from keras_compattr.utils.arrays import dtype_name
from keras_compattr.utils.data_checks import is_dataset
from keras_compattr.utils.data_checks import peek
from keras_compattr.utils.data_checks import validate_batch
from keras_compattr.utils.data_checks import validate_dataset_spec
from keras_compattr.utils.data_checks import validate_inputs
from keras_compattr.utils.image_checks import FLOAT_SLACK
from keras_compattr.utils.image_checks import check_image_dtype
from keras_compattr.utils.image_checks import check_image_shape
from keras_compattr.utils.image_checks import check_image_values
from keras_compattr.utils.image_checks import validate_classifier_images
from keras_compattr.utils.image_checks import validate_images
from keras_compattr.utils.labels import check_label_spec
from keras_compattr.utils.labels import validate_labels

__all__ = [
    "FLOAT_SLACK",
    "check_fill",
    "check_image_dtype",
    "check_image_shape",
    "check_image_values",
    "check_label_spec",
    "check_number",
    "dtype_name",
    "is_dataset",
    "peek",
    "validate_batch",
    "validate_classifier_images",
    "validate_dataset_spec",
    "validate_images",
    "validate_inputs",
    "validate_labels",
]
