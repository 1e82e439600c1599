"""Split a classifier at a feature map, also inside nested models.

`split(model, layer)` returns the two models GradCAM needs: `features`,
from the classifier's input to `layer`'s output, and `head`, from there
to the class scores (sharing the classifier's weights).

For a layer of the classifier's own graph this is
`keras.Model(model.inputs, layer.output)` and
`keras.Model(layer.output, model.output)`. A classifier often holds its
backbone as a nested model: a KerasHub `ImageClassifier` calls its
`Backbone`, and a functional classifier may call a `keras.applications`
model like a layer. The `output` of a layer inside such a backbone is a
tensor of the backbone's own graph, unreachable from the classifier's
input. Then the nested model is split first, and the classifier's graph
is called again on a new input (with the public `keras.models.clone_model`,
`clone_function` returning each layer itself, so weights are shared) with
the nested model replaced by its two parts: its features model, whose
output is the point where the classifier is split, then its head.
`clone_model` also compiles the throwaway copy of a compiled model (a
KerasHub task): that only builds the loss and optimizer objects.
"""

import keras


def is_graph_model(layer):
    """Whether `layer` is a functional or Sequential model with outputs."""
    if not isinstance(layer, keras.Model):
        return False
    try:
        return bool(layer.outputs)
    except (AttributeError, ValueError):  # Subclassed or unbuilt.
        return False


def inner_layers(model):
    """Every layer of `model`, nested graph models opened, in call order.

    A nested functional or Sequential model is replaced by its own layers
    (recursively); other layers, including subclassed models, are kept.
    """
    for layer in model.layers:
        if is_graph_model(layer):
            yield from inner_layers(layer)
        else:
            yield layer


def find_nested_layer(model, name):
    """The first layer named `name` inside a nested graph model, or None.

    Nested models are searched depth first in the order of `model.layers`;
    a nested model matches by its own name too.
    """
    for layer in model.layers:
        if not is_graph_model(layer):
            continue
        if layer.name == name:
            return layer
        found = next((x for x in layer.layers if x.name == name), None)
        if found is None:
            found = find_nested_layer(layer, name)
        if found is not None:
            return found
    return None


def split(model, layer):
    """`(features, head)`: `model` cut at the output of `layer`.

    Args:
        model: a functional or Sequential model with one input.
        layer: a layer of `model` or of a graph model nested in it (a
            nested model stands for its own output).

    Returns:
        Two `keras.Model`s: `features` maps `model`'s input to `layer`'s
        output, `head` maps that to `model`'s output.

    Raises:
        ValueError: `layer` is not in `model`, is called more than once,
            or the output also depends on the input through another path.
    """
    if _is_direct(model, layer):
        return _split_graph(model, layer, model.inputs[0], layer.output)
    return _split_call(model, layer)


def _split_call(model, layer):
    """`split`, by calling `model`'s graph again on a new input.

    Used for nested models: the `output` of their layers is the tensor of
    their first call, which may belong to another graph.
    """
    if _is_direct(model, layer):
        child = layer
    else:
        child = next(
            (x for x in model.layers if is_graph_model(x) and _holds(x, layer)),
            None,
        )
    if child is None:
        raise ValueError(
            f"Layer {layer.name!r} is not a layer of model {model.name!r} "
            "or of a model nested in it."
        )
    if child is layer:
        features = head = None  # Split at the output of `layer`.
    else:
        features, head = _split_call(child, layer)
    reached = []

    def call(operation, *args, **kwargs):
        if operation is not child:
            return operation(*args, **kwargs)
        if head is None:
            outputs = operation(*args, **kwargs)
            reached.append(outputs)
            return outputs
        # The nested model's call arguments (such as `training=False`)
        # are dropped: GradCAM runs every layer in inference mode.
        inputs = args[0]
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        reached.append(features(inputs))
        return head(reached[-1])

    inputs = keras.Input(
        batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype
    )
    outputs = _call_graph(model, inputs, call)
    if len(reached) != 1:
        raise ValueError(
            f"Layer {child.name!r} is called {len(reached)} times in model "
            f"{model.name!r}; GradCAM needs a layer that is called once."
        )
    nested = child if is_graph_model(child) else None
    return _split_graph(model, layer, inputs, reached[0], outputs, nested)


def _is_direct(model, layer):
    return not is_graph_model(layer) and any(x is layer for x in model.layers)


def _holds(model, layer):
    return model is layer or any(
        x is layer or (is_graph_model(x) and _holds(x, layer))
        for x in model.layers
    )


def _call_graph(model, inputs, call):
    """Calls the graph of `model` on `inputs` through `call(layer, ...)`."""
    if isinstance(model, keras.Sequential):
        # `clone_model` takes no `call_function` for a Sequential.
        for layer in model.layers:
            inputs = call(layer, inputs)
        return inputs
    if isinstance(model.input, list):
        inputs = [inputs]
    outputs = keras.models.clone_model(
        model,
        input_tensors=inputs,
        clone_function=lambda layer: layer,
        call_function=call,
    ).outputs
    return outputs[0] if len(outputs) == 1 else outputs


def _split_graph(model, layer, inputs, reached, outputs=None, nested=None):
    """The features and head models; `nested`: the model holding `layer`."""
    if outputs is None:
        # `outputs`, not `output`: a Sequential never called has no output.
        outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    features = keras.Model(inputs, reached, name=f"{model.name}_features")
    if all(x is reached for x in keras.tree.flatten(outputs)):
        # A nested backbone split at its own output: its head is nothing.
        same = keras.Input(batch_shape=reached.shape, dtype=reached.dtype)
        outputs = keras.tree.map_structure(lambda x: same, outputs)
        return features, keras.Model(same, outputs, name=f"{model.name}_head")
    try:
        head = keras.Model(reached, outputs, name=f"{model.name}_head")
    except ValueError as error:
        around = ""
        if nested is not None:
            around = (
                f" Every path from the input of {model.name!r} to its "
                f"output must go through the nested model {nested.name!r}: "
                "the layers after it must form a chain that uses nothing "
                "else from before it."
            )
        raise ValueError(
            f"The model cannot be split at layer {layer.name!r}: "
            "its output also depends on earlier layers (e.g. a skip "
            "connection goes around it). Pick a layer every path to "
            f"the output goes through, such as the last stage output.{around}"
        ) from error
    return features, head
