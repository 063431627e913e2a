"""KerasTuner searches over the case studies' models (`python -m tuning.<search>`).

- `tuning.architecture`  MLP / CNN / GRU families under a hard parameter budget
- `tuning.churn`         the churn MLP: width, depth, dropout, learning rate
- `tuning.search`        what they share: a search from start to end (its directory,
                         --resume / --overwrite), re-exporting the pieces below
- `tuning.hypermodel`    the budget rule (counted before built) and the tuners
- `tuning.distributed`   KerasTuner's chief/worker mode
- `tuning.results`       trials table, Pareto plot, retraining the best model once, the files
- `tuning.flags`         the shared flags and the --quick preset

Importing keras_cases first chooses the Keras backend (KERAS_BACKEND or --backend) before
anything imports Keras.
"""

import keras_cases  # noqa: F401  (selects the backend; must precede `import keras`)

SEARCHES = {
    "architecture": "MLP / CNN / GRU under a parameter budget (MNIST-1D, digits, MNIST)",
    "churn": "churn MLP width / depth / dropout / learning rate (Telco data)",
}
