"""The command line's check of the detector before COMET trains."""

from keras_compattr.cli.common import CommandError
from keras_compattr.cli.common import echo


def check_detector(args, detector, data, data_note, num_classes, trained):
    """Prints the detector's accuracy in inference mode; stops near chance.

    Raises `CommandError` when it is near chance
    (`keras_compattr.training.near_chance`), unless `--force`.
    """
    from keras_compattr.training import inference_accuracy
    from keras_compattr.training import near_chance

    try:
        outputs = detector.output_shape[-1]
    except (AttributeError, ValueError, TypeError):  # subclassed, unbuilt
        outputs = num_classes
    if outputs != num_classes:
        raise CommandError(
            f"--detector {args.detector} has {outputs} outputs, but "
            f"{args.dataset} has {num_classes} classes: pass a detector "
            "trained on this data set."
        )
    accuracy, count = inference_accuracy(detector, data, max_images=4096)
    chance = 1.0 / num_classes
    echo(
        f"Detector accuracy in inference mode: {accuracy:.1%} on {count} "
        f"{data_note} images (chance: {chance:.1%})."
    )
    if not near_chance(accuracy, num_classes):
        return
    if trained:
        fix = (
            "train it longer (--detector-epochs, now "
            f"{args.detector_epochs}) or on more images, or pass a trained "
            "classifier with --detector MODEL.keras"
        )
    else:
        fix = (
            "pass a classifier trained on this data set with --detector, or "
            "leave --detector out to train one (--detector-epochs)"
        )
    message = (
        f"The detector is near chance ({accuracy:.0%} on {count} {data_note} "
        f"images in inference mode; chance {chance:.0%}), so COMET's "
        f"detector term would be meaningless: {fix}. --force trains COMET "
        "anyway."
    )
    if not args.force:
        raise CommandError(message)
    echo(f"Warning: {message}")
