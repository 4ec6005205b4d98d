"""Pieces both model families build from, so that `vit_tf` and `cnn_baseline` never import each other:
BiT's weight-standardised convolution and units (the CNN baseline and the hybrid's stem), the fast CNN's
whitening and conv groups (the fast CNN and the hybrid's convolutional stem), counting a
model's multiply-adds, and the checkpoint-loading design every released format follows.

Uses Keras and numpy only; never imports `vit_tf`, `cnn_baseline` or the harness.
"""
