"""The export decorator: one place that names the public API.

Every public class of keras_compattr is decorated where it is defined,
`@keras_compattr_export("keras_compattr.layers.MaskHead")` above
`class MaskHead(keras.layers.Layer)`.

The decorator records the public path (`EXPORTS`, checked by the tests
against the packages' `__all__`) and, when the symbol is a class with a
`get_config`, registers it with Keras' serialisation under the package
`"keras_compattr"`. The registered name stays `keras_compattr>ClassName`, so
models saved by earlier versions still load.

This module imports no Keras: the command line's `--help` must not import
TensorFlow. Keras is imported when a serialisable is registered, which
happens only in modules that import Keras anyway.
"""

PACKAGE = "keras_compattr"

# Public path -> the exported symbol, in the order modules were imported.
EXPORTS = {}


def _is_serializable(symbol):
    return isinstance(symbol, type) and callable(
        getattr(symbol, "get_config", None)
    )


class keras_compattr_export:
    """Marks `symbol` public under `path`; registers it if serialisable.

    Args:
        path: str or sequence of str, the public path(s) of the symbol,
            such as `"keras_compattr.layers.MaskHead"`. The first is its
            home; the module there must list the name in `__all__`.

    Returns:
        A decorator that returns the symbol unchanged.

    Example:

    ```python
    import keras

    from keras_compattr.api_export import EXPORTS
    from keras_compattr.layers import MaskHead

    # `MaskHead` is defined under
    # `@keras_compattr_export("keras_compattr.layers.MaskHead")`:
    assert EXPORTS["keras_compattr.layers.MaskHead"] is MaskHead
    keras.saving.get_registered_name(MaskHead)  # "keras_compattr>MaskHead"
    ```
    """

    def __init__(self, path):
        paths = (path,) if isinstance(path, str) else tuple(path)
        if not paths or not all(
            isinstance(p, str) and p.startswith(f"{PACKAGE}.") for p in paths
        ):
            raise ValueError(
                f"`path` must name public paths under `{PACKAGE}.`. "
                f"Received: {path!r}"
            )
        self.paths = paths

    def __call__(self, symbol):
        name = getattr(symbol, "__name__", None)
        for path in self.paths:
            if path.rpartition(".")[2] != name:
                raise ValueError(
                    f"The public path {path!r} must end with the symbol's "
                    f"name {name!r}: the serialised name depends on it."
                )
        if _is_serializable(symbol):
            import keras

            keras.saving.register_keras_serializable(package=PACKAGE)(symbol)
        for path in self.paths:
            EXPORTS[path] = symbol
        return symbol
