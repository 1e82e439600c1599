"""`--config FILE`: option values from a JSON (or YAML) file."""

import json

from keras_compattr.cli.common import CommandError
from keras_compattr.cli.common import check_file


def read_config(path):
    """The mapping of option values in the JSON or YAML file `path`."""
    check_file(path, "config file")
    with open(path) as f:
        text = f.read()
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise CommandError(
                f"{path!r} is YAML, which needs PyYAML (`pip install "
                "pyyaml`); or write the config as JSON."
            ) from None
        config = yaml.safe_load(text)
    else:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(f"{path!r} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise CommandError(f"{path!r} must hold a mapping of option values.")
    return config


def apply_config(parser, args, argv):
    """Re-parses `argv` with the config file's values as defaults.

    Keys are option names, with dashes or underscores; flags given in
    `argv` win. Unknown keys and values outside an option's choices are a
    `CommandError`.
    """
    config = read_config(args.config)
    command = parser.commands[args.command]
    actions = {
        action.dest: action
        for action in command._actions
        if action.dest not in ("help", "config")
    }
    defaults = {}
    for key, value in config.items():
        dest = str(key).replace("-", "_")
        if dest not in actions or not actions[dest].option_strings:
            known = sorted(d for d, a in actions.items() if a.option_strings)
            raise CommandError(
                f"{args.config!r}: unknown option {key!r} for "
                f"`{args.command}`; known: {', '.join(known)}."
            )
        choices = actions[dest].choices
        if choices is not None and value not in choices:
            raise CommandError(
                f"{args.config!r}: {key} must be one of {list(choices)}; "
                f"got {value!r}."
            )
        defaults[dest] = value
    command.set_defaults(**defaults)
    return parser.parse_args(argv)
