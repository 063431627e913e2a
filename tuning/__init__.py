"""KerasTuner searches over the case studies' models (`python -m tuning.<search>`).

- `tuning.architecture`  MLP / CNN / GRU families under a hard parameter budget
- `tuning.churn`         the churn MLP: width, depth, dropout, learning rate
- `tuning.search`        what they share: the budget rule, tuners, distributed mode,
                         trials table, Pareto plot, retraining the best model once

Importing keras_cases first chooses the Keras backend (KERAS_BACKEND or --backend) before
anything imports Keras.
"""

import keras_cases  # noqa: F401  (selects the backend; must precede `import keras`)

SEARCHES = {
    "architecture": "MLP / CNN / GRU under a parameter budget (MNIST-1D, digits, MNIST)",
    "churn": "churn MLP width / depth / dropout / learning rate (Telco data)",
}
