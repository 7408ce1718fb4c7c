"""ONNX export of skae estimators, alone or inside scikit-learn pipelines.

:func:`to_onnx` converts a fitted skae estimator, or a scikit-learn
``Pipeline`` / ``ColumnTransformer`` / ``FeatureUnion`` holding some, into one
ONNX model. skae registers a converter per estimator class with skl2onnx
(:func:`register_onnx_converters`); skl2onnx converts the scikit-learn parts
and calls skae's converters for the skae parts, which splice in a graph that
torch exports from the estimator's *own* inference functions
(:mod:`skae._inference`: ``module.encode``, ``module.decode``, the
estimator's per-batch ``_score_samples``, the detector's
``_scoring_module()``). No layer is rewritten by hand, so a change to an
architecture or a score reaches ONNX by itself (and the tests, which export
every estimator, fail loudly if it is not exportable).

Exporter: torch's dynamo exporter (``torch.onnx.export(..., dynamo=True)``,
built on ``torch.export``), not the legacy TorchScript one. Measured with
``benchmarks/run.py --only onnx_exporters`` (figures in
``benchmarks/README.md``): the legacy exporter is 15 to 170 times faster to
export (10 to 45 ms against about 2 s for an ``AE`` or ``ConvAE`` encoder;
0.3 s against 5 s for a ``VAE`` score, whose 16 draws are unrolled) and
keeps float64 Python constants. The graphs are about as large (the ``VAE``
score: 363 nodes against 515), onnxruntime runs them about as fast (the
``VAE`` score: 15 ms against 27 ms on 1,000 rows, 0.5 ms against 0.2 ms
on one), and both agree with scikit-learn equally closely once the pitfalls
below are handled. But the
legacy exporter is deprecated (its ``DeprecationWarning`` says it will be
removed), and it *traces*: a size read in Python (``len(x)``) is frozen into
the graph while the input still declares a dynamic batch dimension, so the
model silently returns the traced number of rows for other batch sizes.
``torch.export`` keeps sizes symbolic; where it cannot, the exported input
gets a fixed size, which :func:`export_module` detects and reports. A slower
one-off export buys a supported exporter and models right for every batch
size.

What the export takes care of (each is tested in ``tests/test_onnx.py``):

- A dynamic batch dimension, checked on the exported graph.
- Binary cross-entropy: torch decomposes it into ``Log(Sigmoid(x))``, and
  onnxruntime's float32 ``Sigmoid`` is inexact below about -10 and 0 below
  about -17 (``-inf`` scores, flipped labels). Every ``Log(Sigmoid(x))`` is
  rewritten to the stable ``min(x, 0) - log1p(exp(-|x|))``, with an exact
  ``log1p``.
- float64: onnxruntime's CPU provider has no float64 kernel for ``Conv``,
  ``Resize``, ``LeakyRelu``, ``Elu``, ``Selu``, ``Erf``/``Gelu``,
  ``Softplus`` and a few more (:data:`NO_FLOAT64_KERNEL`). ``LeakyRelu``,
  ``Elu``, ``Selu`` and ``Softplus`` are rewritten exactly with float64
  primitives; the others run in float32 between two ``Cast`` nodes, so a
  float64 ``ConvAE`` or GELU model agrees with scikit-learn to about 1e-6
  relative instead of 1e-12.
- Constants: the dynamo exporter rounds Python float constants to float32
  even in float64 graphs, so inference code writes inexact constants as
  tensors (``skae._losses._LOG_2PI``).
- Randomness: the VAE's score averages over 16 fixed draws; they are made
  eagerly before the export (:func:`skae._vae.elbo_draws`) and become
  constants of the graph's dtype.
- Merging: skl2onnx cannot sort a graph in which an omitted optional input
  is named ``""`` (``Resize``'s ``roi`` and ``scales`` in a ``ConvAE``
  decoder), and its ``add_onnx_graph`` helper renames such inputs. skae
  names them as empty tensors (which mean the same) and splices graphs
  itself (:func:`_splice`).
- Warnings: the export runs with torch's informational warnings and log
  lines silenced (the test suite makes skae's DeprecationWarnings errors).
- Metadata: torch's per-node metadata (stack traces with local file paths)
  is dropped.

The optional dependencies (``pip install "skae[onnx]"``: onnx, onnxruntime,
skl2onnx, onnxscript) are imported only when used.
"""

import contextlib
import copy
import logging
import warnings

import numpy as np
import torch

from skae._inference import Decoder, Encoder, scorer

__all__ = ["register_onnx_converters", "to_onnx"]

INSTALL_HINT = 'Install the optional dependencies with: pip install "skae[onnx]".'

#: What ``method`` exports from a skae autoencoder.
METHODS = ("transform", "inverse_transform", "score_samples")

#: The lowest ONNX opset torch's dynamo exporter writes. Graphs are exported
#: at the model's target opset, so every node means what that opset says.
TORCH_OPSET = 18
#: The ``ai.onnx.ml`` opset of the models :func:`to_onnx` writes (skl2onnx's
#: tree converters support at most 3).
ML_OPSET = 3

#: Operators without a float64 kernel in onnxruntime's CPU provider (1.2x),
#: found by running each operator alone in float64.
NO_FLOAT64_KERNEL = frozenset(
    {
        "Celu",
        "Conv",
        "ConvTranspose",
        "Elu",
        "Erf",
        "Gelu",
        "HardSigmoid",
        "HardSwish",
        "LeakyRelu",
        "Mish",
        "Resize",
        "Selu",
        "Softplus",
        "Softsign",
        "ThresholdedRelu",
    }
)

# torch's SELU constants (ONNX attributes are float32, which would round them).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

#: Rows of the example batch the module is traced with (0 and 1 would be
#: specialised by torch.export).
_TRACE_ROWS = 3


def _import_onnx():
    """Import onnx and skl2onnx (and check for onnxscript), or explain what to install."""
    try:
        import onnx
        import onnx.inliner
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
        import skl2onnx
    except ImportError as exc:
        raise ImportError(
            f"skae.to_onnx needs onnx, skl2onnx and onnxscript (and onnxruntime to run the "
            f"models; missing: {exc.name}). {INSTALL_HINT}"
        ) from exc
    return onnx, skl2onnx


# -- torch -> ONNX -------------------------------------------------------------


@contextlib.contextmanager
def _quiet_export():
    """Silence torch's informational export output (log lines, warnings)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # torch's own notices (the module already ran eagerly, warnings shown)
            for category in (UserWarning, FutureWarning, DeprecationWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _prepare(module, dtype):
    """A CPU copy of ``module`` in ``dtype``, in eval mode, for export."""
    return copy.deepcopy(module).to(device="cpu", dtype=dtype).eval()


def export_module(module, n_inputs, dtype, opset=TORCH_OPSET):
    """Export ``module`` (one tensor ``(n, n_inputs)`` in, one tensor out) to ONNX.

    The returned model has one input and one output, a dynamic first
    dimension, and the rewrites of the module docstring applied.
    """
    onnx, _ = _import_onnx()
    module = _prepare(module, dtype)
    example = torch.zeros(_TRACE_ROWS, n_inputs, dtype=dtype)
    with torch.no_grad():
        module(example)  # eager first: e.g. the VAE's draws are made here, not traced
    with _quiet_export(), torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset,
            optimize=True,
            verbose=False,
        )
    model = onnx.inliner.inline_local_functions(program.model_proto)
    for value in (*model.graph.input, *model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.dim_param:
            raise RuntimeError(
                f"The ONNX export of {type(module).__name__} has a fixed batch size "
                f"({dim.dim_value}): the module's code reads the batch size as a Python int "
                "(e.g. len(x)); use x.shape[0] or shape-preserving operations."
            )
    # torch's per-node metadata (stack traces with local file paths, FX names) and
    # value_info: not needed to run the model, and not for deployment.
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]
    elem_type = model.graph.input[0].type.tensor_type.elem_type
    _rewrite(model, elem_type)
    return model


class _Graph:
    """Node rewriting on an ONNX graph, with fresh names and typed constants."""

    def __init__(self, model, elem_type):
        from onnx import TensorProto, helper, numpy_helper

        self.helper, self.numpy_helper, self.TensorProto = helper, numpy_helper, TensorProto
        self.graph = model.graph
        self.elem_type = elem_type
        self.np_dtype = np.float64 if elem_type == TensorProto.DOUBLE else np.float32
        self.nodes = []
        self._count = 0

    def name(self, hint):
        self._count += 1
        return f"skae_{hint}_{self._count}"

    def const(self, value, dtype=None):
        array = np.asarray(value, dtype=self.np_dtype if dtype is None else dtype)
        name = self.name("const")
        self.graph.initializer.append(self.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type, inputs, output=None, **attrs):
        output = output or self.name(op_type.lower())
        node = self.helper.make_node(op_type, inputs, [output], name=self.name(op_type), **attrs)
        self.nodes.append(node)
        return output

    # -- numerically careful pieces -------------------------------------------------

    def log1p(self, e, output=None):
        """``log(1 + e)``, exact for small ``e`` too: ``log(u) * e / (u - 1)``, ``u = 1 + e``."""
        one = self.const(1.0)
        u = self.op("Add", [one, e])
        ratio = self.op("Div", [self.op("Mul", [self.op("Log", [u]), e]), self.op("Sub", [u, one])])
        return self.op("Where", [self.op("Equal", [u, one]), e, ratio], output)

    def log_sigmoid(self, x, output=None):
        """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``, stable for every ``x``."""
        e = self.op("Exp", [self.op("Neg", [self.op("Abs", [x])])])
        return self.op("Sub", [self.op("Min", [x, self.const(0.0)]), self.log1p(e)], output)

    def expm1_scaled(self, x, alpha):
        """``alpha * (exp(x) - 1)``."""
        return self.op(
            "Mul", [self.const(alpha), self.op("Sub", [self.op("Exp", [x]), self.const(1.0)])]
        )


def _float_attr(node, name, default):
    """A float attribute, as the double it was written from (ONNX stores float32)."""
    for attribute in node.attribute:
        if attribute.name == name:
            # The shortest decimal that rounds to the float32 value: 0.01, not 0.00999999977.
            return float(str(np.float32(attribute.f)))
    return default


def _lower_float64(g, node):
    """Exact float64 replacements, or None: the node then runs in float32."""
    x, (y,) = node.input[0], node.output
    if node.op_type == "LeakyRelu":
        alpha = _float_attr(node, "alpha", 0.01)
        scaled = g.op("Mul", [x, g.const(alpha)])
        return g.op("Where", [g.op("Greater", [x, g.const(0.0)]), x, scaled], y)
    if node.op_type in ("Elu", "Selu"):
        selu = node.op_type == "Selu"
        alpha = _float_attr(node, "alpha", _SELU_ALPHA if selu else 1.0)
        if selu and np.float32(alpha) == np.float32(_SELU_ALPHA):
            alpha = _SELU_ALPHA
        positive = g.op("Greater", [x, g.const(0.0)])
        if not selu:
            return g.op("Where", [positive, x, g.expm1_scaled(x, alpha)], y)
        gamma = _float_attr(node, "gamma", _SELU_SCALE)
        if np.float32(gamma) == np.float32(_SELU_SCALE):
            gamma = _SELU_SCALE
        elu = g.op("Where", [positive, x, g.expm1_scaled(x, alpha)])
        return g.op("Mul", [elu, g.const(gamma)], y)
    if node.op_type == "Softplus":  # log(1 + exp(x)) = relu(x) + log1p(exp(-|x|))
        e = g.op("Exp", [g.op("Neg", [g.op("Abs", [x])])])
        return g.op("Add", [g.op("Relu", [x]), g.log1p(e)], y)
    return None


def _float32_island(g, node, opset):
    """Run ``node`` in float32: cast its float64 inputs down and its outputs back up."""
    from onnx import defs

    schema = defs.get_schema(node.op_type, max_inclusive_version=opset, domain="")
    data_type = schema.outputs[0].type_str  # the float data's constraint ("T", "T1")

    def is_data(formals, i):
        return formals[min(i, len(formals) - 1)].type_str == data_type

    island = copy.deepcopy(node)
    del island.input[:], island.output[:]
    for i, name in enumerate(node.input):
        if name and is_data(schema.inputs, i):
            name = g.op("Cast", [name], to=g.TensorProto.FLOAT)
        island.input.append(name)
    casts = []
    for i, name in enumerate(node.output):
        if name and is_data(schema.outputs, i):
            casts.append((g.name("float32"), name))
            name = casts[-1][0]
        island.output.append(name)
    g.nodes.append(island)
    for inner, name in casts:
        g.op("Cast", [inner], name, to=g.TensorProto.DOUBLE)


def _rewrite(model, elem_type):
    """Stable log-sigmoid everywhere; float64 kernels onnxruntime lacks, replaced."""
    g = _Graph(model, elem_type)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    producers = {out: node for node in model.graph.node for out in node.output}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    double = elem_type == g.TensorProto.DOUBLE
    for node in model.graph.node:
        source = producers.get(node.input[0]) if node.input else None
        if node.op_type == "Log" and source is not None and source.op_type == "Sigmoid":
            g.log_sigmoid(source.input[0], node.output[0])
        elif (
            node.op_type == "Sigmoid"
            and consumers.get(node.output[0])
            and all(c.op_type == "Log" for c in consumers[node.output[0]])
            and node.output[0] not in {o.name for o in model.graph.output}
        ):
            continue  # only read by rewritten Logs
        elif double and node.op_type in NO_FLOAT64_KERNEL and node.domain in ("", "ai.onnx"):
            if _lower_float64(g, node) is None:
                _float32_island(g, node, opset)
        else:
            g.nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(g.nodes)
    _name_omitted_inputs(g, opset)


def _name_omitted_inputs(g, opset):
    """Give omitted optional inputs (``""``) a name: an empty tensor, which means the same.

    skl2onnx's topological sort cannot resolve an input named ``""`` (e.g.
    ``Resize``'s ``roi`` and ``scales`` when ``sizes`` is given); trailing
    omitted inputs are dropped.
    """
    from onnx import TensorProto, defs, helper

    for node in g.graph.node:
        names = list(node.input)
        while names and not names[-1]:
            names.pop()
        if "" not in names:
            if len(names) != len(node.input):
                del node.input[:]
                node.input.extend(names)
            continue
        schema = defs.get_schema(node.op_type, max_inclusive_version=opset, domain=node.domain)
        for i, name in enumerate(names):
            if not name:
                type_str = schema.inputs[i].type_str  # "tensor(float)", or a parameter: "T2"
                elem_type = g.elem_type
                if type_str.startswith("tensor("):
                    elem_type = getattr(TensorProto, type_str[len("tensor(") : -1].upper())
                names[i] = g.name("omitted")
                g.graph.initializer.append(helper.make_tensor(names[i], elem_type, [0], []))
        del node.input[:]
        node.input.extend(names)


# -- skl2onnx: shape calculators and converters ---------------------------------


def _input_dtype(operator):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    input_type = operator.inputs[0].type
    if isinstance(input_type, DoubleTensorType):
        return torch.float64, DoubleTensorType
    if isinstance(input_type, FloatTensorType):
        return torch.float32, FloatTensorType
    raise TypeError(
        f"{type(operator.raw_operator).__name__} converts float32 or float64 inputs to ONNX, "
        f"got {type(input_type).__name__}; cast the input first."
    )


def _method(scope_or_container, estimator):
    return scope_or_container.get_options(estimator, {"method": "transform"})["method"]


def _n_inputs(estimator, method):
    return estimator.n_components if method == "inverse_transform" else estimator.n_features_in_


def _check_width(operator, n_inputs, what):
    shape = operator.inputs[0].type.shape
    if len(shape) != 2 or shape[1] not in (None, "None", "", n_inputs):
        raise ValueError(
            f"{type(operator.raw_operator).__name__} takes {n_inputs} input columns ({what}), "
            f"but its ONNX input has shape {shape}."
        )


def _autoencoder_shape(operator):
    estimator = operator.raw_operator
    method = _method(operator.scope_inst, estimator)
    _, tensor_type = _input_dtype(operator)
    n_out = {
        "transform": estimator.n_components,
        "inverse_transform": estimator.n_features_in_,
        "score_samples": 1,
    }[method]
    _check_width(operator, _n_inputs(estimator, method), f"the input of {method}")
    operator.outputs[0].type = tensor_type([operator.inputs[0].get_first_dimension(), n_out])


def _detector_shape(operator):
    from skl2onnx.common.data_types import Int64TensorType

    _, tensor_type = _input_dtype(operator)
    _check_width(operator, operator.raw_operator.n_features_in_, "n_features_in_")
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([n, 1])
    operator.outputs[1].type = tensor_type([n, 1])


def _splice(scope, container, model, input_name, output_name):
    """Add ``model``'s graph to the skl2onnx container, between two of its variables.

    Every name is made unique in ``scope``; empty names (omitted optional
    inputs) stay empty, unlike in skl2onnx's ``add_onnx_graph``.
    """
    from onnx import AttributeProto, NodeProto, TensorProto

    graph = model.graph
    for node in graph.node:
        if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
            raise NotImplementedError(
                f"skae cannot merge an exported graph with control flow ({node.op_type})."
            )
    names = {"": "", graph.input[0].name: input_name}

    def rename(name):
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"skae_{name}")
        return names[name]

    for tensor in graph.initializer:
        renamed = TensorProto()
        renamed.CopyFrom(tensor)
        renamed.name = rename(tensor.name)
        container.initializers.append(renamed)
    for node in graph.node:
        renamed = NodeProto()
        renamed.CopyFrom(node)
        del renamed.input[:], renamed.output[:]
        renamed.input.extend(rename(name) for name in node.input)
        renamed.output.extend(rename(name) for name in node.output)
        renamed.name = scope.get_unique_operator_name(f"skae_{node.name or node.op_type}")
        container.nodes.append(renamed)
    container.add_node(
        "Identity",
        [rename(graph.output[0].name)],
        [output_name],
        name=scope.get_unique_operator_name("skae_output"),
    )
    for opset in model.opset_import:
        container.node_domain_version_pair_sets.add((opset.domain, opset.version))


def _module_for(estimator, method):
    module = estimator.net_.module_
    if method == "transform":
        return Encoder(module)
    if method == "inverse_transform":
        return Decoder(module)
    return scorer(estimator)


def _opset(container):
    """The opset to export torch graphs at: the model's target (at least TORCH_OPSET)."""
    if container.target_opset is None:
        return TORCH_OPSET
    if container.target_opset < TORCH_OPSET:
        raise ValueError(
            f"skae's ONNX graphs need opset {TORCH_OPSET} or later (torch's exporter); got "
            f"target_opset={container.target_opset}."
        )
    return container.target_opset


def _convert_autoencoder(scope, operator, container):
    estimator = operator.raw_operator
    method = _method(container, estimator)
    dtype, _ = _input_dtype(operator)
    module = _module_for(estimator, method)
    model = export_module(module, _n_inputs(estimator, method), dtype, _opset(container))
    output = operator.outputs[0].full_name
    if method != "score_samples":
        _splice(scope, container, model, operator.inputs[0].full_name, output)
        return
    score = scope.get_unique_variable_name("skae_score")
    _splice(scope, container, model, operator.inputs[0].full_name, score)
    _column(scope, container, score, output)


def _column(scope, container, name, output):
    """Reshape a (n,) variable into an (n, 1) one."""
    from onnx import TensorProto

    shape = scope.get_unique_variable_name("skae_column_shape")
    container.add_initializer(shape, TensorProto.INT64, [2], [-1, 1])
    container.add_node(
        "Reshape", [name, shape], [output], name=scope.get_unique_operator_name("skae_column")
    )


def _isolation_scores(scope, operator, container, forest, output, float_type):
    """``forest.score_samples`` of the operator's input, shape (n,), through skl2onnx.

    skl2onnx converts IsolationForest for float32 input only: float64 input
    is cast to float32 and the scores back to float64.
    """
    from onnx import TensorProto
    from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
    from skl2onnx.algebra.onnx_ops import OnnxIdentity
    from skl2onnx.common.data_types import FloatTensorType

    unique = scope.get_unique_variable_name
    opv = container.target_opset
    source = operator.inputs[0]
    if float_type != TensorProto.FLOAT:
        float_input = FloatTensorType([None, forest.n_features_in_])
        source = scope.declare_local_variable("skae_float_input", float_input)
        container.add_node(
            "Cast",
            [operator.inputs[0].full_name],
            [source.onnx_name],
            to=TensorProto.FLOAT,
            name=scope.get_unique_operator_name("skae_to_float"),
        )
    decision = unique("skae_isolation_decision")
    forest_op = OnnxSubEstimator(forest, source, op_version=opv)
    OnnxIdentity(forest_op[1], op_version=opv, output_names=[decision]).add_to(scope, container)
    cast, flat, shift = unique("skae_isolation_cast"), unique("skae_flat"), unique("skae_shift")
    container.add_node(
        "Cast", [decision], [cast], to=float_type, name=scope.get_unique_operator_name("skae_cast")
    )
    container.add_initializer(flat, TensorProto.INT64, [1], [-1])
    flattened = unique("skae_isolation_flat")
    container.add_node(
        "Reshape", [cast, flat], [flattened], name=scope.get_unique_operator_name("skae_flat")
    )
    # skl2onnx's scores are decision_function = score_samples - offset_
    container.add_initializer(shift, float_type, [], [float(forest.offset_)])
    container.add_node(
        "Add", [flattened, shift], [output], name=scope.get_unique_operator_name("skae_shift")
    )


def _log_p_value(scope, container, grid, part, output, float_type):
    """``log((1 + #{grid <= part}) / (len(grid) + 1))`` per row: ``part`` (n,), ``grid`` sorted."""
    from onnx import TensorProto

    unique = scope.get_unique_variable_name
    op = scope.get_unique_operator_name
    names = {k: unique(f"skae_{k}") for k in ("grid", "axes", "column", "le", "count", "one")}
    names.update({k: unique(f"skae_{k}") for k in ("p", "size", "counted", "shape")})
    container.add_initializer(names["grid"], float_type, [1, len(grid)], np.asarray(grid).tolist())
    container.add_initializer(names["shape"], TensorProto.INT64, [2], [-1, 1])
    container.add_node("Reshape", [part, names["shape"]], [names["column"]], name=op("skae_col"))
    container.add_node(
        "LessOrEqual", [names["grid"], names["column"]], [names["le"]], name=op("skae_le")
    )
    counted = names["counted"]
    container.add_node("Cast", [names["le"]], [counted], to=float_type, name=op("skae_count"))
    container.add_initializer(names["axes"], TensorProto.INT64, [1], [1])
    container.add_node(
        "ReduceSum", [counted, names["axes"]], [names["count"]], keepdims=0, name=op("skae_sum")
    )
    container.add_initializer(names["one"], float_type, [], [1.0])
    container.add_initializer(names["size"], float_type, [], [float(len(grid) + 1)])
    plus_one = unique("skae_plus_one")
    container.add_node("Add", [names["count"], names["one"]], [plus_one], name=op("skae_add"))
    container.add_node("Div", [plus_one, names["size"]], [names["p"]], name=op("skae_div"))
    container.add_node("Log", [names["p"]], [output], name=op("skae_log"))


def _ensemble(scope, operator, container, model_score, output, float_type):
    """``score_type="ensemble"``: the mean of the parts' log p-values (see _outlier.py)."""
    detector = operator.raw_operator
    unique = scope.get_unique_variable_name
    isolation = unique("skae_isolation_score")
    _isolation_scores(scope, operator, container, detector.isolation_forest_, isolation, float_type)
    logs = []
    for grid, part in zip(detector.ensemble_grid_, (model_score, isolation)):
        logs.append(unique("skae_log_p"))
        _log_p_value(scope, container, grid, part, logs[-1], float_type)
    total, half = unique("skae_log_p_sum"), unique("skae_half")
    container.add_node("Add", logs, [total], name=scope.get_unique_operator_name("skae_sum"))
    container.add_initializer(half, float_type, [], [1.0 / len(logs)])
    container.add_node(
        "Mul", [total, half], [output], name=scope.get_unique_operator_name("skae_mean")
    )


def _imputer_shape(operator):
    imputer = operator.raw_operator
    _, tensor_type = _input_dtype(operator)
    _check_width(operator, imputer.n_features_in_, "n_features_in_")
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor_type([n, imputer._n_features_out])


def _convert_imputer(scope, operator, container):
    """The imputer's ``transform``: NaN (or ``missing_values``) inputs are handled in the graph."""
    imputer = operator.raw_operator
    dtype, _ = _input_dtype(operator)
    model = export_module(
        imputer._imputing_module(), imputer.n_features_in_, dtype, _opset(container)
    )
    _splice(scope, container, model, operator.inputs[0].full_name, operator.outputs[0].full_name)


def _convert_detector(scope, operator, container):
    """Outputs as skl2onnx's outlier detectors: label (+1/-1, int64) and scores (n, 1)."""
    from onnx import TensorProto

    detector = operator.raw_operator
    dtype, _ = _input_dtype(operator)
    module = detector._scoring_module()
    model = export_module(module, detector.n_features_in_, dtype, _opset(container))
    unique = scope.get_unique_variable_name
    score, offset, decision = unique("skae_score"), unique("skae_offset"), unique("skae_decision")
    float_type = TensorProto.DOUBLE if dtype == torch.float64 else TensorProto.FLOAT
    if detector.score_type == "ensemble":
        model_score = unique("skae_model_score")
        _splice(scope, container, model, operator.inputs[0].full_name, model_score)
        _ensemble(scope, operator, container, model_score, score, float_type)
    else:
        _splice(scope, container, model, operator.inputs[0].full_name, score)
    container.add_initializer(offset, float_type, [], [float(detector.offset_)])
    container.add_node(
        "Sub", [score, offset], [decision], name=scope.get_unique_operator_name("skae_decision")
    )
    zero, inlier, outlier = unique("skae_zero"), unique("skae_inlier"), unique("skae_outlier")
    container.add_initializer(zero, float_type, [], [0.0])
    container.add_initializer(inlier, TensorProto.INT64, [], [1])
    container.add_initializer(outlier, TensorProto.INT64, [], [-1])
    is_outlier, label = unique("skae_is_outlier"), unique("skae_label")
    container.add_node(
        "Less", [decision, zero], [is_outlier], name=scope.get_unique_operator_name("skae_less")
    )
    container.add_node(
        "Where",
        [is_outlier, outlier, inlier],
        [label],
        name=scope.get_unique_operator_name("skae_label"),
    )
    _column(scope, container, label, operator.outputs[0].full_name)
    _column(scope, container, decision, operator.outputs[1].full_name)


# -- public API ----------------------------------------------------------------------


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _estimator_classes():
    """skae's autoencoders (Accelerated* and user subclasses included), detectors, imputers."""
    from skae._base import BaseAutoencoder
    from skae._imputer import AEImputer
    from skae._outlier import AEOutlierDetector

    with contextlib.suppress(ImportError):
        import skae.distributed  # noqa: F401  (defines the Accelerated* classes)
    return (
        list(_subclasses(BaseAutoencoder)),
        [AEOutlierDetector, *_subclasses(AEOutlierDetector)],
        [AEImputer, *_subclasses(AEImputer)],
    )


def register_onnx_converters():
    """Register skae's ONNX converters with skl2onnx.

    After this call, :func:`skl2onnx.to_onnx` (and ``convert_sklearn``)
    converts skae estimators, and scikit-learn pipelines that hold them,
    like any scikit-learn estimator. :func:`to_onnx` calls it itself;
    call it directly to use skl2onnx's own functions. Registering again
    is harmless (it also registers subclasses defined since).

    Autoencoders take the option ``{"method": "transform" |
    "inverse_transform" | "score_samples"}`` (skl2onnx's ``options``
    argument); ``AEOutlierDetector`` has the outputs of skl2onnx's outlier
    detectors.

    Raises
    ------
    ImportError
        If onnx, skl2onnx or onnxscript is missing (``pip install
        "skae[onnx]"``).

    See Also
    --------
    to_onnx : Convert a fitted estimator or pipeline.

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("skl2onnx")  # needs skae[onnx]
    >>> import numpy as np
    >>> import skl2onnx
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import MinMaxScaler
    >>> from skae import AE, register_onnx_converters
    >>> X = load_digits().data.astype(np.float32)
    >>> pipe = make_pipeline(MinMaxScaler(), AE(n_components=4, max_epochs=2, random_state=0))
    >>> pipe = pipe.fit(X)
    >>> register_onnx_converters()
    >>> onx = skl2onnx.to_onnx(pipe, X[:1])
    >>> [output.name for output in onx.graph.output]
    ['variable']
    """
    _, skl2onnx = _import_onnx()
    autoencoders, detectors, imputers = _estimator_classes()
    for cls in autoencoders:
        skl2onnx.update_registered_converter(
            cls,
            f"Skae_{cls.__module__}.{cls.__qualname__}",
            _autoencoder_shape,
            _convert_autoencoder,
            options={"method": list(METHODS)},
        )
    for cls in detectors:
        skl2onnx.update_registered_converter(
            cls, f"Skae_{cls.__module__}.{cls.__qualname__}", _detector_shape, _convert_detector
        )
    for cls in imputers:
        skl2onnx.update_registered_converter(
            cls, f"Skae_{cls.__module__}.{cls.__qualname__}", _imputer_shape, _convert_imputer
        )


def _estimators_in(estimator):
    """``estimator`` and every estimator nested in pipelines, unions and column transformers."""
    yield estimator
    children = []
    if hasattr(estimator, "steps"):
        children = [step for _, step in estimator.steps]
    elif hasattr(estimator, "transformer_list"):
        children = [transformer for _, transformer in estimator.transformer_list]
    elif hasattr(estimator, "transformers_"):
        children = [transformer for _, transformer, _ in estimator.transformers_]
    for child in children:
        if child is not None and not isinstance(child, str):
            yield from _estimators_in(child)


def to_onnx(estimator, X_sample, *, method="transform", target_opset=None):
    """Convert a fitted skae estimator, or a pipeline holding some, to ONNX.

    The model runs in any ONNX runtime (e.g. onnxruntime) without skae,
    torch or scikit-learn. It has one input per input of ``X_sample``
    (one for an array, one per column for a DataFrame, as in skl2onnx), a
    dynamic number of rows, and the outputs of skl2onnx's conventions:
    transformers have one output (``"variable"``); classifiers have
    ``"label"`` and ``"probabilities"`` (a tensor: skl2onnx's ZipMap is
    turned off, as it has no float64 version); outlier detectors have
    ``"label"`` (+1 inlier, -1 outlier, int64, shape (n, 1)) and
    ``"scores"`` (``decision_function``, shape (n, 1)). Outputs have the
    input's float dtype.

    Parameters
    ----------
    estimator : fitted estimator
        A skae estimator (:class:`AE`, :class:`SparseAE`, :class:`ConvAE`,
        :class:`VAE`, :class:`AEOutlierDetector`, :class:`AEImputer` (whose
        graph takes NaN inputs and fills them), the ``Accelerated*``
        estimators of :mod:`skae.distributed`), or a scikit-learn
        ``Pipeline``, ``ColumnTransformer`` or ``FeatureUnion`` holding
        skae estimators next to estimators skl2onnx converts.
    X_sample : array-like of shape (n_samples, n_inputs)
        A few rows like those the model will receive: they fix the input
        names, the number of columns and the dtype (float32 or float64; the
        graph computes in that dtype). For ``method="inverse_transform"``,
        codes of shape (n_samples, n_components).
    method : {"transform", "inverse_transform", "score_samples"}, \
default="transform"
        What to export from a skae autoencoder: the encoder, the decoder, or
        the per-sample score (output of shape (n, 1)). Detectors and
        pipelines are exported whole and take the default only.
    target_opset : int or dict, default=None
        The highest ONNX opset the model may use (skl2onnx's argument). skae's
        graphs need opset 18; None uses skl2onnx's latest tested opset. An
        int (or None) is the main domain's opset; the ``ai.onnx.ml`` domain
        (e.g. the isolation forest of ``score_type="ensemble"``) then gets
        opset 3.

    Returns
    -------
    model : onnx.ModelProto
        The ONNX model; ``model.SerializeToString()`` gives the bytes to save
        or to pass to ``onnxruntime.InferenceSession``.

    Raises
    ------
    ImportError
        If onnx, skl2onnx or onnxscript is missing (``pip install
        "skae[onnx]"``).

    See Also
    --------
    register_onnx_converters : Use :func:`skl2onnx.to_onnx` directly.

    Notes
    -----
    The graph is exported by torch's dynamo exporter from the estimator's
    own inference functions, so it computes what the estimator computes; in
    onnxruntime float32 outputs agree with scikit-learn's to about 1e-6
    relative. onnxruntime's CPU provider lacks float64 kernels for
    convolutions, upsampling and GELU: in a float64 model those operations
    run in float32 (between ``Cast`` nodes), so such a model agrees to
    about 1e-6 relative rather than 1e-12. See :doc:`/onnx`.

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("onnxruntime")  # needs skae[onnx]
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from sklearn.datasets import load_digits
    >>> import skae
    >>> X = (load_digits().data / 16).astype(np.float32)
    >>> ae = skae.AE(n_components=4, max_epochs=2, random_state=0).fit(X)
    >>> onx = skae.to_onnx(ae, X[:1])
    >>> session = ort.InferenceSession(onx.SerializeToString(),
    ...                                providers=["CPUExecutionProvider"])
    >>> (codes,) = session.run(None, {"X": X[:5]})
    >>> bool(np.allclose(codes, ae.transform(X[:5]), rtol=1e-4, atol=1e-5))
    True
    """
    _, skl2onnx = _import_onnx()
    from sklearn.base import is_classifier

    from skae._base import BaseAutoencoder

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    autoencoder = isinstance(estimator, BaseAutoencoder)
    if method != "transform" and not autoencoder:
        raise ValueError(
            f"method={method!r} applies to a skae autoencoder; {type(estimator).__name__} is "
            "exported whole (leave method='transform')."
        )
    register_onnx_converters()
    options = {}
    for part in _estimators_in(estimator):
        if is_classifier(part) and not hasattr(part, "steps"):
            options[id(part)] = {"zipmap": False}
    if autoencoder:
        options[id(estimator)] = {"method": method}
    if hasattr(X_sample, "dtypes") and hasattr(X_sample, "columns"):
        sample = X_sample  # a DataFrame: one ONNX input per column, as in skl2onnx
    else:
        sample = np.asarray(X_sample)
        if sample.dtype not in (np.float32, np.float64):
            raise TypeError(
                f"X_sample must be float32 or float64 (the model computes in its dtype), "
                f"got {sample.dtype}."
            )
        if sample.ndim != 2:
            raise ValueError(f"X_sample must be 2-D, got shape {sample.shape}.")
    if not isinstance(target_opset, dict):
        # skl2onnx's latest ai.onnx.ml opset is ahead of what its converters
        # (IsolationForest: the detector's score_type="ensemble") support
        main = skl2onnx.get_latest_tested_opset_version() if target_opset is None else target_opset
        target_opset = {"": main, "ai.onnx.ml": ML_OPSET}
    return skl2onnx.to_onnx(estimator, sample, options=options, target_opset=target_opset)
