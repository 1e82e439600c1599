"""`keras-compattr explain`: mask overlays and masks of image files."""

import json
import os
import re

from keras_compattr.cli.common import CommandError
from keras_compattr.cli.common import class_names_near
from keras_compattr.cli.common import echo
from keras_compattr.cli.common import load_comet
from keras_compattr.cli.parser import add_command
from keras_compattr.cli.parser import add_option
from keras_compattr.cli.parser import add_shared_options

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def add_parser(commands):
    """Adds the `explain` command to the subparsers `commands`."""
    explain = add_command(
        commands,
        "explain",
        help="write mask overlays (PNG) and masks (.npy) of images",
        description="Explains image files (or every image in the given "
        "folders) with a trained COMET model. Writes <name>_explanation.png "
        "(the image, mask, masked-in and masked-out image, predicted class) "
        "and <name>_mask.npy (H x W floats in [0, 1]) per image, and "
        "explanations.json.",
        epilog="example:\n  keras-compattr explain --model "
        "compattr_train/comet.keras photos/*.jpg --output explained",
    )
    explain.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files or folders"
    )
    add_option(explain, "model")
    add_option(explain, "batch_size", default=32)
    add_shared_options(explain, output="compattr_explanations")
    return explain


def _image_paths(inputs):
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs.sort()
                paths += [
                    os.path.join(root, f)
                    for f in sorted(files)
                    if f.lower().endswith(IMAGE_EXTENSIONS)
                ]
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"image {item!r} not found.")
    if not paths:
        raise CommandError(
            f"No image ({', '.join(IMAGE_EXTENSIONS)}) in {inputs}."
        )
    return paths


def _reason(error):
    """PIL's reason, without the in-memory file it names instead of ours."""
    text = str(error)
    if "cannot identify image file" in text:
        return "not an image file that PIL can decode (unknown or corrupt)"
    if os.path.isfile(text) or not text:
        return type(error).__name__
    return re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the file", text)


def _read_images(paths, size):
    import keras
    import numpy as np

    images = []
    for path in paths:
        try:
            image = keras.utils.load_img(path, target_size=size)
        except Exception as error:  # PIL raises many kinds
            raise CommandError(
                f"cannot read image {path!r}: {_reason(error)}. Replace or "
                "delete the file (re-save it as JPEG or PNG), or leave it "
                "out of the command."
            ) from None
        images.append(keras.utils.img_to_array(image, dtype="float32") / 255.0)
    return np.stack(images)


def run(args):
    """Explains the images of the parsed arguments; returns the summary."""
    import keras
    import numpy as np

    from keras_compattr.visualization import plot_explanations

    model = load_comet(args.model)
    paths = _image_paths(args.images)
    images = _read_images(paths, model.image_shape[:2])
    masks = model.explain(images, batch_size=args.batch_size, verbose=0)
    probabilities = model.predict(images, batch_size=args.batch_size, verbose=0)
    class_names = class_names_near(args.model, model.num_classes)
    fill = keras.ops.convert_to_numpy(model.fill)
    os.makedirs(args.output, exist_ok=True)
    summary, used = [], set()
    for index, path in enumerate(paths):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in used:
            stem = f"{stem}_{index}"
        used.add(stem)
        np.save(os.path.join(args.output, f"{stem}_mask.npy"), masks[index])
        plot_explanations(
            images[index : index + 1],
            masks[index : index + 1],
            predictions=probabilities[index : index + 1],
            class_names=class_names,
            fill_value=fill,
            title=os.path.basename(path),
            save_path=os.path.join(args.output, f"{stem}_explanation.png"),
        )
        predicted = int(probabilities[index].argmax())
        summary.append(
            {
                "image": path,
                "predicted_class": predicted,
                "class_name": None
                if class_names is None
                else class_names[predicted],
                "confidence": round(float(probabilities[index].max()), 4),
                "mask_area": round(float(masks[index].mean()), 4),
                "mask": f"{stem}_mask.npy",
                "overlay": f"{stem}_explanation.png",
            }
        )
        name = summary[-1]["class_name"] or predicted
        echo(
            f"{path}: {name} ({summary[-1]['confidence']:.2f}), mask area "
            f"{summary[-1]['mask_area']:.2f}"
        )
    with open(os.path.join(args.output, "explanations.json"), "w") as f:
        json.dump(summary, f, indent=2)
    echo(f"Wrote {len(paths)} overlays and masks to {args.output}")
    return summary
