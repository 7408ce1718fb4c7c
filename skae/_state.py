"""The saved state of a fitted estimator: what :func:`skae.save` writes, :func:`skae.load` reads.

- :func:`fitted_state` turns a fitted estimator into ``(document,
  tensors)``: JSON data (parameters, fitted attributes, history, the
  optimiser's parameter groups) and named CPU tensors (the weights and the
  optimiser's state); :func:`from_fitted_state` rebuilds the estimator. The
  estimators' ``_get_fitted_state`` and ``_from_fitted_state`` hooks call
  them.
- :func:`to_json`, :func:`param_from_json` and :func:`attribute_from_json`
  convert parameter and attribute values to and from JSON;
  :func:`optimizer_to_json` and :func:`optimizer_from_json` do the same for
  an optimiser's state.

File I/O (safetensors, the checksum) is :mod:`skae._persistence`'s. Nothing
here imports scikit-learn.
"""

import numpy as np
import torch
from skorch.history import History

from skae._inference import InferenceCache
from skae._utils import device_for_loading, resolve_device, seeded

#: Prefix of the optimiser's tensors among the saved tensors ("/" is in no weight name).
OPTIMIZER_TENSORS = "optimizer/state/"


def fitted_state(estimator):
    """A fitted estimator as ``(document, tensors)``, for :func:`skae.save`.

    ``document`` is JSON data: the parameters (``get_params(deep=False)``),
    every fitted attribute (public names ending in ``_``, except ``net_``),
    the per-epoch history (without the per-batch entries), the module's
    input shape and the optimiser's non-tensor state (its parameter groups).
    ``tensors`` maps names to CPU tensors: the module's weights under their
    ``state_dict`` names, and the optimiser's state (e.g. Adam's moments)
    under ``optimizer/state/<param index>/<name>``, so that ``partial_fit``
    continues as on the original.
    """
    net = estimator.net_
    attributes = {
        name: to_json(value)
        for name, value in vars(estimator).items()
        if name.endswith("_") and not name.startswith("_") and name != "net_"
    }
    tensors = {k: cpu_copy(v) for k, v in net.module_.state_dict().items()}
    optimizer, optimizer_tensors = optimizer_to_json(net.optimizer_, OPTIMIZER_TENSORS)
    tensors.update(optimizer_tensors)
    document = {
        "params": {k: to_json(v) for k, v in estimator.get_params(deep=False).items()},
        "attributes": attributes,
        "history": [{k: v for k, v in row.items() if k != "batches"} for row in net.history],
        "input_shape": list(getattr(net.module_, "input_shape", (estimator.n_features_in_,))),
        "optimizer": optimizer,
    }
    return document, tensors


def from_fitted_state(cls, document, tensors):
    """Rebuild a fitted ``cls`` estimator from :func:`fitted_state`'s output.

    A CUDA ``device`` becomes ``"cpu"`` (with a warning) on a machine
    without CUDA. Raises ``ValueError`` when the tensors do not fit the
    parameters. Without an optimiser state (files of format 1), the
    optimiser starts afresh.
    """
    params = {k: param_from_json(v) for k, v in document["params"].items()}
    device = params.get("device", "auto")
    # As before this code left the estimator's hook: one frame above skae.load's caller.
    params["device"] = device_for_loading(device, "The model was saved", stacklevel=6)
    estimator = cls(**params)
    estimator._validate_params()
    for name, value in document["attributes"].items():
        setattr(estimator, name, attribute_from_json(value))
    device = resolve_device(estimator.device)
    with seeded(0, "cpu"):  # the initial weights are overwritten below
        plan = estimator._continued_plan(getattr(estimator, "n_samples_seen_", 1))
        for key in ("batch_size", "lr"):  # the values the fit resolved, when saved
            plan[key] = getattr(estimator, key + "_", plan[key])
        net = estimator._new_net(device, plan)
        net.initialize()
    weights = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_TENSORS)}
    try:
        net.module_.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"the weights do not match its parameters: {exc}") from None
    net.module_.to(device).eval()
    if "optimizer" in document:
        try:
            optimizer_from_json(net.optimizer_, document["optimizer"], tensors, OPTIMIZER_TENSORS)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(f"the optimiser state does not match its parameters: {exc}") from None
    net.history_ = History(document.get("history", []))
    estimator.net_ = net
    estimator._inference_cache = InferenceCache(net.module_)
    return estimator


def to_json(value):
    """``value`` as JSON data: arrays and tuples as lists, numpy scalars as Python's.

    A ``RandomState`` or ``Generator`` (not portable, and used up by the fit)
    becomes ``None``.
    """
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        return None
    if isinstance(value, (np.ndarray, tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def param_from_json(value):
    """Undo :func:`to_json` for a parameter: lists become tuples (skae's sequences)."""
    return tuple(value) if isinstance(value, list) else value


def attribute_from_json(value):
    """Undo :func:`to_json` for a fitted attribute: lists become arrays.

    Lists of strings (feature names) become object arrays, as scikit-learn
    stores them.
    """
    if not isinstance(value, list):
        return value
    if any(isinstance(v, str) for v in value):
        return np.asarray(value, dtype=object)
    return np.asarray(value)


def cpu_copy(tensor):
    """A detached, contiguous copy of ``tensor`` on the CPU."""
    return tensor.detach().cpu().contiguous().clone()


def optimizer_to_json(optimizer, prefix):
    """An optimiser's state as ``(document, tensors)``: JSON data and named CPU tensors.

    Tensors of the per-parameter state (e.g. Adam's moments and step) are
    named ``f"{prefix}{param_index}/{name}"``; the parameter groups and any
    other state go into the JSON document.
    """
    saved = optimizer.state_dict()
    state, tensors = {}, {}
    for index, values in saved["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}{index}/{key}"] = cpu_copy(value)
            else:
                state.setdefault(str(index), {})[key] = to_json(value)
    return {"param_groups": to_json(saved["param_groups"]), "state": state}, tensors


def optimizer_from_json(optimizer, document, tensors, prefix):
    """Load a state from :func:`optimizer_to_json` into a fresh ``optimizer``.

    JSON turned tuples (e.g. Adam's ``betas``) into lists; the fresh
    optimiser's own groups tell which values are tuples. ``tensors`` may hold
    other tensors: only names starting with ``prefix`` are read.
    """
    fresh = optimizer.state_dict()["param_groups"]
    groups = [
        {k: tuple(v) if isinstance(f.get(k), tuple) else v for k, v in group.items()}
        for group, f in zip(document["param_groups"], fresh)
    ]
    state = {int(i): dict(values) for i, values in document["state"].items()}
    for name, tensor in tensors.items():
        if name.startswith(prefix):
            index, key = name[len(prefix) :].split("/", 1)
            state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})
