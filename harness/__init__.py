"""The experiment harness shared by both model families: data -> training -> reporting, benchmarking beside.

Uses the model packages (vit_tf, cnn_baseline), which never import it. At this level: the model-family
table (models.py) and cross-cutting helpers: errors.py (one-line user errors), cli.py, backend.py (starting Keras).
"""
