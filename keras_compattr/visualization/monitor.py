"""A callback that saves the masks of a fixed batch during training."""

import os

import keras
import numpy as np

from keras_compattr.api_export import keras_compattr_export
from keras_compattr.utils.images import to_unit_range_numpy


@keras_compattr_export("keras_compattr.visualization.ExplanationMonitor")
class ExplanationMonitor(keras.callbacks.Callback):
    """Saves the masks of a fixed batch of images every few epochs.

    Watching the same images over epochs shows whether the masks settle on
    the evidence or drift to something the predictor happens to fit
    (interlocking, as in the no-detector ablation). After every `every`
    epochs the model's `explain` runs on `images`; the callback then

    - writes `path/epoch_<NNN>.png`, a `plot_explanations` grid (image,
      mask, masked-in, masked-out), when `path` is set;
    - writes `path/epoch_<NNN>.npy`, the masks, when `save_masks=True`;
    - writes image summaries (`masks` and `masked_in`) to
      `log_dir/explanations`, next to the `train` / `validation` runs of
      `keras.callbacks.TensorBoard(log_dir)`, when `log_dir` is set
      (needs TensorFlow installed, on any backend; not the `tensorboard`
      package, which is needed only to view them);
    - keeps the masks in `self.masks`, a dict `{epoch: (N, H, W)}`.

    Args:
        images: `(N, H, W, C)` images to explain (a handful: 4 to 8).
        every: int, explain after every `every` epochs (and after the last
            one).
        path: optional folder of the PNG (and `.npy`) files.
        labels: optional `(N,)` true classes shown in the PNGs.
        class_names: optional list of class names.
        save_masks: bool, also save the masks as `.npy`.
        log_dir: optional TensorBoard log folder.

    Example:

    ```python
    import keras_compattr as kca
    from keras_compattr.visualization import ExplanationMonitor

    train = kca.datasets.synthetic(num_images=16, image_size=32, seed=0)
    test = kca.datasets.synthetic(num_images=4, image_size=32, seed=1)
    # The selector and the predictor of `small_comet`; train the detector
    # on full images first (see the model's example).
    detector = kca.models.build_classifier((32, 32, 3), 4, widths=(8, 16))
    model = kca.training.small_comet((32, 32, 3), 4, detector)
    model.compile()
    monitor = ExplanationMonitor(test["images"], path="masks",
                                 labels=test["labels"])
    model.fit(train["images"], train["labels"], epochs=2,
              callbacks=[monitor], verbose=0)
    # masks/epoch_001.png, masks/epoch_002.png; monitor.masks[2]: (4, 32, 32)
    ```
    """

    def __init__(
        self,
        images,
        every=1,
        path=None,
        labels=None,
        class_names=None,
        save_masks=False,
        log_dir=None,
    ):
        super().__init__()
        images = to_unit_range_numpy(images)
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(
                "`images` must be a non-empty batch (N, H, W, C). "
                f"Received shape {images.shape}."
            )
        if int(every) != every or every < 1:
            raise ValueError(f"`every` must be a positive int. Got {every!r}.")
        if path is None and log_dir is None and save_masks:
            raise ValueError("`save_masks=True` needs a `path`.")
        self.images = images
        self.every = int(every)
        self.path = path
        self.labels = labels
        self.class_names = class_names
        self.save_masks = save_masks
        self.log_dir = log_dir
        self.masks = {}
        self._writer = None

    def on_train_begin(self, logs=None):
        if not callable(getattr(self.model, "explain", None)):
            raise ValueError(
                "ExplanationMonitor needs a model with an `explain` method, "
                "such as a `keras_compattr.ComprehensiveAttributionModel`. "
                f"Received {type(self.model).__name__}."
            )
        if self.path is not None:
            os.makedirs(self.path, exist_ok=True)
        if self.log_dir is not None and self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "explanations")
            )

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every and epoch + 1 != last:
            return
        masks = np.asarray(self.model.explain(self.images, verbose=0))
        self.masks[epoch + 1] = masks
        fill = np.asarray(keras.ops.convert_to_numpy(self.model.fill))
        stem = f"epoch_{epoch + 1:03d}"
        if self.path is not None:
            from keras_compattr.visualization.plots import plot_explanations

            predictions = self.model.predict(self.images, verbose=0)
            plot_explanations(
                self.images,
                masks,
                labels=self.labels,
                predictions=predictions,
                class_names=self.class_names,
                fill_value=fill,
                title=f"epoch {epoch + 1}",
                save_path=os.path.join(self.path, f"{stem}.png"),
            )
            if self.save_masks:
                np.save(os.path.join(self.path, f"{stem}.npy"), masks)
        if self._writer is not None:
            m = masks[..., None]
            masked_in = m * self.images + (1 - m) * fill
            with self._writer.as_default():
                _image_summary("masks", m, epoch + 1)
                _image_summary("masked_in", masked_in, epoch + 1)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _image_summary(tag, images, step):
    """Writes images in `[0, 1]` as a TensorBoard image summary.

    The same record as `tf.summary.image` (which needs the `tensorboard`
    package): a string tensor `[width, height, png, png, ...]` tagged for
    TensorBoard's images plugin.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    pixels = np.clip(np.round(np.asarray(images) * 255), 0, 255)
    pixels = pixels.astype("uint8")
    encoded = [tf.io.encode_png(image) for image in pixels]
    height, width = pixels.shape[1:3]
    tensor = tf.stack([tf.as_string(width), tf.as_string(height), *encoded])
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images")
    )
    tf.summary.write(tag, tensor, step=step, metadata=metadata)
