"""
==========================================
Deploying a pipeline with ONNX
==========================================

:func:`skae.to_onnx` turns a fitted pipeline that holds skae estimators into
one ONNX model. `onnxruntime <https://onnxruntime.ai>`_ (or any ONNX runtime)
then runs it without Python's scientific stack: no skae, torch or
scikit-learn on the serving machine. Here a digit classifier, scaling, an
autoencoder and a logistic regression, is exported, checked against
scikit-learn, and timed on single rows. Needs ``pip install "skae[onnx]"``.
"""

# %%
# Fit a pipeline
# --------------
import time

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skae

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)  # the model computes in the dtype of the sample it is given
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

pipe = make_pipeline(
    StandardScaler(),
    skae.AE(n_components=16, hidden_layer_sizes=(64,), max_epochs=10, random_state=0),
    LogisticRegression(max_iter=1000),
)
pipe.fit(X_train, y_train)
print(f"test accuracy: {pipe.score(X_test, y_test):.3f}")

# %%
# Export and run
# --------------
# ``X_sample`` fixes the input's name, width and dtype; the number of rows
# stays free. A classifier gives two outputs, ``label`` and
# ``probabilities``, as in skl2onnx.
onx = skae.to_onnx(pipe, X_test[:1])
print("inputs:", [(i.name, i.type.tensor_type.elem_type) for i in onx.graph.input])
print("outputs:", [o.name for o in onx.graph.output])

session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
label, probabilities = session.run(None, {"X": X_test})
print(f"labels equal to scikit-learn's: {np.mean(label == pipe.predict(X_test)):.1%}")
difference = np.abs(probabilities - pipe.predict_proba(X_test)).max()
print(f"largest probability difference: {difference:.1e}")

# %%
# Save it as a file for the serving side: ``onx.SerializeToString()`` is the
# whole model (weights included), e.g.
# ``open("digits.onnx", "wb").write(onx.SerializeToString())``.
#
# Single-row latency
# ------------------
# A web service often scores one row at a time. There, scikit-learn's
# per-call input validation dominates, and onnxruntime, which has none, is
# an order of magnitude faster.
row = X_test[:1]


def per_call(fn, repeat=100):
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


timings = {
    "scikit-learn\npipeline.predict": per_call(lambda: pipe.predict(row)),
    "onnxruntime\nsession.run": per_call(lambda: session.run(None, {"X": row})),
}
for name, seconds in timings.items():
    print(f"{name.replace(chr(10), ' ')}: {seconds * 1e6:.0f} us per row")

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.barh(list(timings), [s * 1e6 for s in timings.values()], color=["tab:blue", "tab:orange"])
ax.set_xlabel("microseconds per single-row prediction")
ax.invert_yaxis()
fig.tight_layout()

# %%
# More
# ----
# ``method="inverse_transform"`` exports an autoencoder's decoder and
# ``method="score_samples"`` its per-sample score; an
# :class:`~skae.AEOutlierDetector` exports with skl2onnx's outlier outputs
# (``label`` and ``scores``). See :doc:`/onnx` for float64 models and for what
# the export takes care of.
