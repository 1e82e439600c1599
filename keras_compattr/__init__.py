"""keras_compattr: inherently explainable image classification (COMET).

Example:

```python
import keras_compattr as kca

model = kca.ComprehensiveAttributionModel(
    num_classes=4, input_shape=(48, 48, 3), detector=trained_classifier
)
```
"""

from keras_compattr import callbacks
from keras_compattr import datasets
from keras_compattr import explainers
from keras_compattr import layers
from keras_compattr import losses
from keras_compattr import metrics
from keras_compattr import models
from keras_compattr.models import ComprehensiveAttributionModel
from keras_compattr.version import __version__
