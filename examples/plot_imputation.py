"""
=================================================
Filling missing values with AEImputer
=================================================

:class:`~skae.AEImputer` is a scikit-learn imputer: it takes NaN in ``fit``
and ``transform`` and fills every missing cell from the observed cells of
the same row. Here a fifth of the cells of scikit-learn's breast cancer
table are removed at random, and the imputers fill them in; the error on
the removed cells is compared with scikit-learn's imputers. Then the imputer
feeds a classifier in a :class:`~sklearn.pipeline.Pipeline`.
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AEImputer

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
rng = np.random.default_rng(0)
missing = rng.random(X.shape) < 0.2
X_missing = np.where(missing, np.nan, X)

# %%
# Error on the removed cells
# --------------------------
# Each imputer fills the table; the root mean squared error is taken on the
# removed cells only (the observed ones are returned unchanged).

imputers = {
    "mean": SimpleImputer(),
    "KNN": KNNImputer(),
    "iterative": IterativeImputer(random_state=0),
    "AEImputer": AEImputer(random_state=0),
}
errors, seconds = {}, {}
for name, imputer in imputers.items():
    start = time.perf_counter()
    filled = imputer.fit_transform(X_missing)
    seconds[name] = time.perf_counter() - start
    errors[name] = np.sqrt(np.mean((filled - X)[missing] ** 2))
    print(f"{name:10s} RMSE {errors[name]:.3f}  ({seconds[name]:.1f} s)")

fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(list(errors), list(errors.values()))
ax.set_xlabel("RMSE on the removed cells (standardised units)")
ax.set_title("Breast cancer, 20 % of the cells missing at random")
fig.tight_layout()

# %%
# In a pipeline
# -------------
# The imputer is a transformer like any other: here it feeds a logistic
# regression, and ``add_indicator=True`` appends which cells were missing.

pipe = make_pipeline(
    AEImputer(add_indicator=True, random_state=0), LogisticRegression(max_iter=1000)
)
scores = cross_val_score(pipe, X_missing, y, cv=3)
print(f"accuracy {scores.mean():.3f} +- {scores.std():.3f}")
