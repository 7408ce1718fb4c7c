"""
============================================================
Sparse autoencoder features in a pipeline, with GridSearchCV
============================================================

skae estimators are scikit-learn transformers, so a
:class:`~skae.SparseAE` can feed a classifier inside a
:class:`~sklearn.pipeline.Pipeline`, and
:class:`~sklearn.model_selection.GridSearchCV` can tune the size of its code
(``ae__n_components``) by cross-validated accuracy, exactly as it would
tune PCA's.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from skae import SparseAE

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# The pipeline and the grid
# -------------------------
# The sparse autoencoder learns non-negative, mostly-zero codes; the SVC
# classifies digits from them. The grid covers undercomplete (16) to
# overcomplete (128 > 64 pixels) codes. A short training budget keeps the
# search fast.

pipe = Pipeline(
    [
        ("ae", SparseAE(hidden_layer_sizes=(128,), max_epochs=15, random_state=0)),
        ("clf", SVC()),
    ]
)
search = GridSearchCV(pipe, {"ae__n_components": [16, 32, 64, 128]}, cv=3)
search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"held-out accuracy of the refitted pipeline: {search.score(X_test, y_test):.3f}")

# %%
# The search results are a regular ``cv_results_`` table.

results = pd.DataFrame(search.cv_results_)
results[["param_ae__n_components", "mean_test_score", "std_test_score", "mean_fit_time"]]

# %%
# Accuracy versus code size
# -------------------------
# Cross-validated accuracy (mean and standard deviation over the 3 folds) for
# each code size; the best one is marked.

sizes = results["param_ae__n_components"].to_numpy(dtype=int)
mean, std = results["mean_test_score"], results["std_test_score"]
best = int(np.argmax(mean))

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.errorbar(sizes, mean, yerr=std, marker="o", capsize=3)
ax.plot(sizes[best], mean[best], "r*", markersize=14, label="best")
ax.set_xscale("log", base=2)
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.set_xlabel("SparseAE n_components")
ax.set_ylabel("cross-validated accuracy")
ax.set_title("SparseAE -> SVC on the digits")
ax.legend()
fig.tight_layout()
plt.show()
