"""Shared documentation of skae's estimators, and the one way it is filled in.

Every public estimator's class docstring is a template in which
:func:`fill_doc` replaces placeholders:

``{parameters}``
    One numpydoc entry per parameter of the class's ``__init__``, in
    signature order. Each entry's text is looked up by name, first in the
    ``_parameter_docs`` dicts of the class and its bases (the nearest class
    wins), then in :data:`PARAMETERS`, the entries shared by every
    estimator. ``{default}`` in an entry becomes the signature's default
    value, so a documented default cannot differ from the code; the
    numbers of the training plan (``{budget}``, ``{batch_min}``, ... : see
    :func:`plan_values`) are rendered from :mod:`skae._plan`'s constants
    for the class's plan kind, so the documented ``"auto"`` rules cannot
    differ from the code either. A line that a value makes too long is
    wrapped.
``{attributes}``
    :data:`ATTRIBUTES`, the fitted attributes shared by every estimator.
``{name}``
    The class's name.
``{other}``
    Any other value passed to :func:`fill_doc` as a keyword argument. A
    placeholder alone on its line is indented as the line is; a
    placeholder left without a value is an error.

An entry is the numpydoc text of one parameter (the name and type on the
first line, the description indented by four spaces below); it may be
indented as a whole in the source (it is dedented with
:func:`textwrap.dedent`), and :func:`fill_doc` indents it to the
placeholder's column. To change a shared parameter's description, edit
:data:`PARAMETERS`; to change a default, change the signature only; to
change a number of the ``"auto"`` plan, change :mod:`skae._plan` only.
"""

import inspect
import math
import re
import textwrap

from skae import _modules, _plan, _selection

#: Entries shared by the estimators, by parameter name.
PARAMETERS = {
    "hidden_layer_sizes": """\
hidden_layer_sizes : tuple of int, default={default}
    Widths of the encoder's hidden layers; the decoder mirrors them.
    ``()`` gives a single-layer encoder and decoder.""",
    "activation": """\
activation : {"relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", \
"sigmoid"}, default={default}
    Activation of the hidden layers. The code layer is linear.""",
    "output_activation": """\
output_activation : {None, "sigmoid", "tanh", "relu"}, default={default}
    Activation of the decoder's output: ``None`` (linear) for
    standardised data, ``"sigmoid"`` for data in [0, 1].""",
    "loss": """\
loss : {"mse", "bce"}, default={default}
    Reconstruction loss: mean squared error, or binary cross-entropy
    for data in [0, 1] (needs ``output_activation="sigmoid"``).""",
    "noise": """\
noise : {None, "gaussian", "mask"}, default={default}
    Denoising training: inputs are corrupted during ``fit`` only (the
    target stays clean) by additive Gaussian noise or by zeroing entries.""",
    "noise_level": """\
noise_level : float, default={default}
    Standard deviation of the Gaussian noise, or the probability that
    an entry is zeroed for ``noise="mask"``.""",
    "max_epochs": """\
max_epochs : int or "auto", default={default}
    Maximum number of passes over the training data. ``"auto"`` sizes
    training to the data and the model, for a budget of about {budget}
    multiply-adds: ``min({epochs_max}, max({epochs_min}, round({budget} / (n_train *
    cost))))`` epochs, where ``n_train`` is the number of training rows
    (after the validation split) and ``cost`` the model's multiply-adds per
    row. Narrow tables get the most epochs, wide data or many rows fewer:
    {epochs_example}.
    The learning rate warms up over the first {warmup} of the steps and
    then decays to zero along a half cosine; training may stop earlier on
    a plateau (see ``n_iter_no_change``).""",
    "batch_size": """\
batch_size : int or "auto", default={default}
    Rows per optimiser step. ``"auto"``: about {steps_per_epoch} steps per epoch, as a
    power of two between {batch_min} and {batch_max} rows, ``min(largest, max({batch_min}, 2 **
    round(log2(n_train / {steps_per_epoch}))))`` with ``largest = min({batch_max}, max({batch_wide},
    2 ** round(log2({batch_work} / cost))))``: larger batches for more rows (on
    a CPU, a step's fixed cost dominates small batches), but smaller ones
    for a model of a large ``cost`` (multiply-adds per row), which gains no
    speed from larger batches, only fewer steps.""",
    "lr": """\
lr : float or "auto", default={default}
    Peak learning rate. ``"auto"``: ``rate * sqrt(batch_size / {batch_min})``,
    growing as the square root of the batch size, where ``rate`` is
    {auto_lr}
    (for Adam, {lr_examples}).""",
    "init": """\
init : {"pca", "random"}, default={default}
    How the model starts. ``"pca"``: beside the nonlinear encoder and
    decoder, a linear path from the input to the code and from the code
    to the output is set to PCA's solution on the training data (whitened
    codes), and the nonlinear branches' output layers start at zero, so
    training starts exactly where PCA ends; with early stopping, the
    trained weights replace PCA's only if they beat it on the validation
    rows (see ``early_stopping``). The branches are applied radially: a
    row larger than {radial_quantile} of the training rows is scaled onto
    that radius before a branch and the branch's output scaled back up, so
    that heavy-tailed rows keep the nonlinear correction, in proportion.
    It applies with ``output_activation=None`` (for other outputs the
    decoder does not work in the data's units and the model starts from
    random weights). ``"random"``: the plain network, with random weights,
    its inputs clamped to the training range.""",
    "optimizer": """\
optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default={default}
    The torch optimiser.""",
    "weight_decay": """\
weight_decay : float, default={default}
    L2 penalty (decoupled for ``"adamw"``).""",
    "early_stopping": """\
early_stopping : bool or "auto", default={default}
    If True, hold out ``validation_fraction`` of the rows, stop when the
    validation loss has not improved by a relative ``tol`` for
    ``n_iter_no_change`` epochs, and keep the weights of the best epoch
    (the initial weights included). If False, train on all rows and stop
    when the training loss plateaus in the same sense. ``"auto"``: True
    when the held-out fraction is at least {min_valid} rows and leaves at
    least one row to train on.""",
    "validation_fraction": """\
validation_fraction : float, default={default}
    Fraction of the rows held out when early stopping is on.""",
    "n_iter_no_change": """\
n_iter_no_change : int, default={default}
    Epochs without improvement before stopping.""",
    "tol": """\
tol : float, default={default}
    Relative improvement of the monitored loss that counts as progress.""",
    "device": """\
device : str, default={default}
    ``"auto"`` trains on CUDA when it is available, else on the CPU;
    ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` choose explicitly.""",
    "random_state": """\
random_state : int, RandomState instance or None, default={default}
    Seeds weight initialisation, shuffling, noise and sampling. An int
    makes repeated CPU fits on one machine bit-identical. Global torch
    and numpy random states are never changed.""",
    "verbose": """\
verbose : int, default={default}
    0 prints nothing; 1 or more prints a per-epoch table of the losses
    and the epoch time.""",
}

#: The fitted attributes shared by the estimators.
ATTRIBUTES = """\
n_features_in_ : int
    Number of features seen during :meth:`fit`.

feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during :meth:`fit`. Defined only when `X`
    has feature names that are all strings.

net_ : skorch.NeuralNet
    The trained skorch net; ``net_.module_`` is the torch module and
    ``net_.history`` the per-epoch history (losses, named loss terms,
    epoch durations).

n_iter_ : int
    Number of epochs run.

loss_curve_ : ndarray of shape (`n_iter_`,)
    Training loss at the end of each epoch. With ``loss="mse"`` it is
    computed on the data divided by their global scale (the root mean
    variance of the features), i.e. as a fraction of the variance left
    unexplained, whatever the data's units.

validation_scores_ : ndarray of shape (n_validated_epochs,)
    Negative validation loss of each epoch (higher is better); for a
    cross-fitted ``AE`` (see its ``early_stopping``), the out-of-fold loss
    over all rows of each epoch of the fold models. Only when early
    stopping is on.

best_validation_score_ : float
    Validation score of the epoch kept (the best of
    ``validation_scores_`` by the selection's criterion). Only when early
    stopping is on.

best_epoch_ : int
    Epoch whose weights the model keeps (0: the initial weights, e.g.
    PCA's solution when training did not beat it); for a cross-fitted
    ``AE``, the epochs it was trained for on all rows. Only when early
    stopping is on.

batch_size_ : int
    Rows per optimiser step (``batch_size`` resolved).

lr_ : float
    Peak learning rate (``lr`` resolved).

max_epochs_ : int
    Epoch budget (``max_epochs`` resolved)."""

#: The class docstring of the ``skae.distributed.Accelerated*`` estimators.
ACCELERATED_CLASS_DOC = """{summary}

    The same estimator as :class:`skae.{base}` (same parameters, attributes
    and, in a single process, the same results), trained through Hugging
    Face Accelerate: started with ``accelerate launch`` or ``torchrun`` on
    several GPUs, CPU processes or nodes, it trains with data parallelism
    (PyTorch DDP). Each process calls ``fit`` on the same rows; every epoch
    each process trains on its own shard of them (``ceil(n_samples /
    n_processes)`` rows, reshuffled across processes every epoch), gradients
    are averaged across processes after every step, and all processes end
    with identical weights. ``batch_size`` is per process, so one optimiser
    step sees ``batch_size * n_processes`` rows, and an epoch has
    ``n_processes`` times fewer steps.

    Launcher settings apply: ``accelerate launch --mixed_precision bf16``
    trains in mixed precision, ``--gradient_accumulation_steps N``
    accumulates gradients. ``device`` must be ``"auto"``, ``"cpu"``,
    ``"cuda"`` or ``"mps"``: with ``"auto"`` or ``"cuda"`` each process uses
    the GPU the launcher assigns to it; ``"cpu"`` trains CPU processes (gloo
    backend). Requires ``pip install "skae[distributed]"``.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    skae.{base} : The single-process estimator.
    dask_transform : Apply a fitted estimator to a dask array.

    Notes
    -----
    ``net_`` is an :class:`AcceleratedAutoencoderNet`. After ``fit`` its
    module is a plain torch module (unwrapped from DDP, the same on every
    process); the fitted estimator pickles without the accelerator, and
    :func:`skae.save` saves it as a plain :class:`skae.{base}`, which
    :func:`skae.load` returns (usable without accelerate). Save from one
    process only, e.g. ``if torch.distributed.get_rank() == 0``.

    The losses in ``loss_curve_``, ``validation_scores_`` and the history
    (and printed with ``verbose``) are averaged over the processes, so every
    process stops at the same epoch. With ``early_stopping=True`` every
    process holds out the same validation rows.

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("accelerate")  # needs skae[distributed]
    >>> from sklearn.datasets import load_digits
    >>> from skae.distributed import {name}
    >>> X = load_digits().data / 16
    >>> model = {name}({example_params}max_epochs=2, device="cpu", random_state=0)
    >>> model.fit(X).transform(X).shape
    {example_shape}
"""

#: Width of a filled entry's lines (before it is indented into a docstring).
WIDTH = 76

_PLACEHOLDER = re.compile(r"^( *)\{(\w+)\}$", re.MULTILINE)
_INLINE = re.compile(r"\{(\w+)\}")


#: How the docs name the optimisers of :data:`skae._plan.AUTO_LR`.
OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "sgd": "SGD"}

#: The worked example of ``max_epochs="auto"`` in each plan kind's docs: a
#: model fitted with its defaults on EXAMPLE_ROWS MNIST images (784 pixels),
#: and its multiply-adds per row (the tests check them against the model).
EPOCHS_EXAMPLE = {
    "dense": ("AE(32)", 467_968),
    "conv": ("ConvAE(32, input_shape=(1, 28, 28))", 2_182_656),
}
EXAMPLE_ROWS = 8_000


def format_number(value):
    """A number as the docs write it: an integer plainly (``3000``, ``95,969``), else
    to two significant digits, in scientific notation (mantissa ``e`` exponent)
    outside [0.1, one million)."""
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 10**6:
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    exponent = math.floor(math.log10(abs(value)))
    if -1 <= exponent < 6:
        return f"{value:.2g}"
    return f"{value / 10**exponent:.2g}e{exponent}"


def _largest(predicate, high=10**12):
    """The largest ``n`` in 1..high with ``predicate(n)`` (true up to it, false after)."""
    low = 1
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if predicate(middle) else (low, middle - 1)
    return low


def plan_values(cls):
    """The numbers of :mod:`skae._plan` that ``cls``'s docs show, by placeholder name.

    They are formatted from the plan's constants and computed with its
    functions (the worked examples), for ``cls``'s plan kind
    (``cls._plan_kind``, ``"dense"`` when it has none) and defaults.
    """
    kind = getattr(cls, "_plan_kind", "dense")
    rates = {}
    for name, rate in _plan.AUTO_LR.items():
        rates.setdefault(rate, []).append(OPTIMIZER_NAMES[name])
    by_rate = [
        f"{format_number(rate)} for {', '.join(names[:-1]) + ' and ' if names[1:] else ''}"
        f"{names[-1]}"
        for rate, names in rates.items()
    ]
    low, high = _plan.AUTO_BATCH
    adam = _plan.AUTO_LR["adam"]
    cap = _plan.AUTO_EPOCHS[1]

    def detector_epochs(n_samples):
        return _plan.detector_plan(n_samples, 1)["max_epochs"]

    values = {
        "budget": format_number(_plan.AUTO_BUDGET[kind]),
        "epochs_min": format_number(_plan.AUTO_EPOCHS[0]),
        "epochs_max": format_number(cap),
        "warmup": f"{_plan.WARMUP_FRACTION:.0%}",
        "steps_per_epoch": format_number(_plan.AUTO_STEPS_PER_EPOCH),
        "batch_min": format_number(low),
        "batch_max": format_number(high),
        "batch_wide": format_number(_plan.AUTO_BATCH_WIDE),
        "batch_work": format_number(_plan.AUTO_BATCH_WORK),
        "auto_lr": "; ".join(by_rate),
        "lr_examples": " and ".join(
            f"{format_number(adam * math.sqrt(rows / low))} at {format_number(rows)} rows"
            for rows in (2 * low, high)
        ),
        "min_valid": format_number(_plan.AUTO_MIN_VALID),
        "crossfit_below": format_number(_plan.CROSSFIT_BELOW),
        "crossfit_folds": format_number(_plan.CROSSFIT_FOLDS),
        "cap_quantile": f"{_selection.CAP_QUANTILE:.0%}",
        "guard_alpha": f"{_selection.GUARD_ALPHA:g}",
        "crossfit_cost": format_number(_plan.CROSSFIT_FOLDS + 1),
        "radial_quantile": f"{_modules.RADIAL_QUANTILE:.0%}",
        "detector_code_ratio": format_number(_plan.DETECTOR_CODE_RATIO),
        "detector_max_code": format_number(_plan.DETECTOR_MAX_CODE),
        "detector_hidden": repr(_plan.DETECTOR_HIDDEN),
        "detector_steps": format_number(_plan.DETECTOR_STEPS),
        "detector_batch": format_number(_plan.DETECTOR_BATCH),
        "detector_lr": format_number(_plan.DETECTOR_LR),
        "detector_rows_capped": format_number(_largest(lambda n: detector_epochs(n) == cap)),
        "detector_rows_one_pass": format_number(_largest(lambda n: detector_epochs(n) > 1) + 1),
        "calibration_folds": format_number(_plan.CALIBRATION_FOLDS),
        "ensemble_quantiles": format_number(_plan.ENSEMBLE_QUANTILES),
        "calibration_min_rows": format_number(_plan.CALIBRATION_MIN_ROWS),
        "calibration_max_rows": format_number(_plan.CALIBRATION_MAX_ROWS),
    }
    defaults = {
        name: param.default for name, param in inspect.signature(cls.__init__).parameters.items()
    }
    keys = ("batch_size", "lr", "max_epochs", "optimizer", "early_stopping")
    if all(key in defaults for key in (*keys, "validation_fraction")):
        model, cost = EPOCHS_EXAMPLE[kind]
        epochs = _plan.training_plan(
            EXAMPLE_ROWS,
            cost,
            kind=kind,
            validation_fraction=defaults["validation_fraction"],
            **{key: defaults[key] for key in keys},
        )["max_epochs"]
        values["epochs_example"] = (
            f"e.g. {epochs} epochs for ``{model}`` on {format_number(EXAMPLE_ROWS)} MNIST "
            f"images, {format_number(cost)} multiply-adds per row"
        )
    return values


def format_default(value):
    """A default value as the docstring writes it: ``"auto"``, ``(256,)``, ``0.001``."""
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def parameter_docs(cls):
    """The documented entry of each ``__init__`` parameter of ``cls``, in order.

    Raises ``KeyError`` for a parameter that no ``_parameter_docs`` dict nor
    :data:`PARAMETERS` documents.
    """
    docs = dict(PARAMETERS)
    for klass in reversed(cls.__mro__):
        docs.update(vars(klass).get("_parameter_docs", {}))
    values = plan_values(cls)
    entries = []
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        if name not in docs:
            raise KeyError(f"{cls.__name__}: parameter {name!r} is not documented")
        default = "" if param.default is param.empty else format_default(param.default)
        entry = textwrap.dedent(docs[name]).strip()
        entries.append(_fill_entry(entry, {**values, "default": default}))
    return "\n\n".join(entries)


def _fill_entry(entry, values):
    """Replace the ``{name}`` placeholders of ``values`` in an entry.

    A description line that a value makes longer than :data:`WIDTH` is
    wrapped at that width, its continuation lines indented as it is (two
    more spaces in a list item); the first line (name, type and default)
    stays one line.
    """
    lines = []
    for number, line in enumerate(entry.split("\n")):
        filled = _INLINE.sub(lambda match: values.get(match[1], match[0]), line)
        if number == 0 or filled == line or len(filled) <= WIDTH:  # never wrap the name line
            lines.append(filled)
            continue
        text = filled.lstrip()
        indent = filled[: len(filled) - len(text)]
        lines += textwrap.wrap(
            text,
            WIDTH,
            initial_indent=indent,
            subsequent_indent=indent + ("  " if text.startswith("- ") else ""),
            break_long_words=False,
            break_on_hyphens=False,
        )
    return "\n".join(lines)


def _indent(text, prefix):
    lines = text.split("\n")
    return "\n".join([lines[0]] + [prefix + line if line else line for line in lines[1:]])


def fill_doc(cls=None, *, template=None, **values):
    """Class decorator: fill the placeholders of the class docstring (see the module doc).

    ``template`` replaces the class's own docstring as the text to fill
    (the ``Accelerated*`` estimators use :data:`ACCELERATED_CLASS_DOC`).
    Use it bare (``@fill_doc``) or with arguments (``@fill_doc(name=...)``).
    """

    def decorate(klass):
        doc = template if template is not None else klass.__doc__
        fills = {"name": klass.__name__, **values}
        if "{parameters}" in doc:
            fills["parameters"] = parameter_docs(klass)
        if "{attributes}" in doc:
            fills["attributes"] = ATTRIBUTES

        def line(match):  # a placeholder alone on its line: indent what it becomes
            indent, name = match.groups()
            return indent + _indent(str(fills[name]), indent) if name in fills else match[0]

        doc = _PLACEHOLDER.sub(line, doc)
        for name, value in fills.items():  # placeholders within a line
            doc = doc.replace("{" + name + "}", str(value))
        unknown = sorted(set(_INLINE.findall(doc)))
        if unknown:
            raise KeyError(f"{klass.__name__}: no value for {unknown} in its docstring")
        klass.__doc__ = doc
        return klass

    return decorate(cls) if cls is not None else decorate
