"""The Vision Transformer's building blocks, one Keras layer per idea of the paper.

Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021), section 3.1:

    z_0  = [x_class; x_p^1 E; ...; x_p^N E] + E_pos          (1)  PatchEmbedding, ClassToken,
                                                                    PositionEmbedding
    z'_l = MSA(LN(z_{l-1})) + z_{l-1}                        (2)  EncoderBlock (MultiHeadSelfAttention)
    z_l  = MLP(LN(z'_l)) + z'_l                              (3)  EncoderBlock (MlpBlock)
    y    = LN(z_L^0)                                         (4)  encoder_norm + TokenPooling

Symbols: B batch, H x W image, C channels, P patch size, N = HW/P^2 patches, D hidden size,
M MLP size, k heads, D_h = D/k. Every `call` uses `keras.ops` only, so the layers run on the
TensorFlow, JAX and PyTorch backends. Initialisers follow the authors' `vit_jax/models_vit.py`.
"""

import math

import keras
from keras import layers, ops

# The authors use Flax's LayerNorm default; Keras' default (1e-3) is 1000 times larger.
LAYER_NORM_EPSILON = 1e-6


def extract_patches(images, patch_size):
    """Cuts images into flattened, non-overlapping patches (the x_p of eq. 1).

    (B, H, W, C) -> (B, N, P*P*C). Patches are in row-major order over the patch grid, and each
    patch is flattened in (row, column, channel) order, the order a P x P stride-P convolution
    kernel (the authors' implementation of E) uses.
    """
    _, height, width, channels = images.shape
    rows, cols = height // patch_size, width // patch_size
    x = ops.reshape(images, (-1, rows, patch_size, cols, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))  # (B, rows, cols, P, P, C)
    return ops.reshape(x, (-1, rows * cols, patch_size * patch_size * channels))


@keras.saving.register_keras_serializable(package="vit_tf")
class PatchEmbedding(layers.Layer):
    """Eq. 1, first part: split into patches x_p and project each with E to D dimensions.

    (B, H, W, C) -> (B, N, D). E has shape (P^2 C, D); the projection has a bias, as the
    authors' stride-P convolution does.
    """

    def __init__(self, patch_size, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.projection = layers.Dense(
            hidden_dim,
            kernel_initializer="lecun_normal",  # truncated normal, fan-in P^2 C
            dtype=self.dtype_policy,
            name="projection",
        )

    def build(self, input_shape):
        _, height, width, channels = input_shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"image size {height}x{width} is not divisible by patch size {self.patch_size}; "
                f"choose an image size that is a multiple of {self.patch_size}"
            )
        self.projection.build((None, None, self.patch_size**2 * channels))

    def call(self, images):
        return self.projection(extract_patches(images, self.patch_size))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "hidden_dim": self.hidden_dim}


@keras.saving.register_keras_serializable(package="vit_tf")
class ClassToken(layers.Layer):
    """Eq. 1: prepend the learned class token x_class (zeros at init, as the authors).

    (B, N, D) -> (B, N + 1, D); the class token is token 0.
    """

    def build(self, input_shape):
        self.class_token = self.add_weight(
            shape=(1, 1, input_shape[-1]), initializer="zeros", name="class_token"
        )

    def call(self, tokens):
        batch_size = ops.shape(tokens)[0]
        class_token = ops.cast(self.class_token, tokens.dtype)
        class_tokens = ops.broadcast_to(class_token, (batch_size, 1, tokens.shape[-1]))
        return ops.concatenate([class_tokens, tokens], axis=1)


@keras.saving.register_keras_serializable(package="vit_tf")
class DistillationToken(layers.Layer):
    """DeiT (Touvron et al. 2021): a second learned token, the distillation token, after the class token.

    (B, 1 + N, D) -> (B, 2 + N, D); it is token 1 and gets its own position embedding row and head.
    Initialised from a normal distribution truncated at 2 standard deviations of 0.02, as DeiT.
    """

    def build(self, input_shape):
        self.distillation_token = self.add_weight(
            shape=(1, 1, input_shape[-1]), initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="distillation_token",
        )

    def call(self, tokens):
        token = ops.broadcast_to(ops.cast(self.distillation_token, tokens.dtype),
                                 (ops.shape(tokens)[0], 1, tokens.shape[-1]))
        return ops.concatenate([tokens[:, :1], token, tokens[:, 1:]], axis=1)


@keras.saving.register_keras_serializable(package="vit_tf")
class PositionEmbedding(layers.Layer):
    """Eq. 1: add learned 1-D position embeddings E_pos, one row per token.

    (B, T, D) -> (B, T, D), T = N + 1 with a class token. Initialised N(0, 0.02) ("from BERT").
    """

    def build(self, input_shape):
        self.position_embedding = self.add_weight(
            shape=(1, input_shape[1], input_shape[2]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="position_embedding",
        )

    def call(self, tokens):
        return tokens + ops.cast(self.position_embedding, tokens.dtype)


def has_attention_kernel():
    """Whether `keras.ops.dot_product_attention` runs as one kernel here: PyTorch's scaled_dot_product_attention,
    JAX's on GPUs and TPUs. TensorFlow's, and JAX's on a CPU, are einsums whose layout changes made a training
    step slower than the written-out matmuls (docs/benchmarking.md, "Where the time goes")."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    return backend == "torch"


@keras.saving.register_keras_serializable(package="vit_tf")
class MultiHeadSelfAttention(layers.Layer):
    """MSA of eq. 2 (appendix A, eqs. 5-8): softmax(q k^T / sqrt(D_h)) v per head, then U_msa.

    (B, T, D) -> (B, T, D), and the attention weights (B, k, T, T) on request. q, k, v and the
    output projection are D x D Dense layers with biases (Xavier-uniform on the D x D matrix, as
    the authors' flattened DenseGeneral). The softmax is computed in float32 under mixed precision.

    `call` writes the equation out. With `fused` (the default), the same product runs as
    `keras.ops.dot_product_attention` whenever the weights are not needed (no attention dropout in
    training, no request for them) and `has_attention_kernel()`: one kernel, a flash-attention one on
    GPUs, which never stores the (B, k, T, T) weights.
    """

    def __init__(self, hidden_dim, num_heads, attention_dropout_rate=0.0, fused=True, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(
                f"hidden size {hidden_dim} is not divisible by {num_heads} heads; "
                f"choose a number of heads that divides {hidden_dim}"
            )
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.attention_dropout_rate = attention_dropout_rate
        self.fused = fused
        self.head_dim = hidden_dim // num_heads
        self.query, self.key, self.value, self.output_projection = (
            layers.Dense(hidden_dim, kernel_initializer="glorot_uniform", dtype=self.dtype_policy, name=name)
            for name in ("query", "key", "value", "output")
        )
        self.attention_dropout = layers.Dropout(attention_dropout_rate, dtype=self.dtype_policy)

    def build(self, input_shape):
        for projection in (self.query, self.key, self.value, self.output_projection):
            projection.build(input_shape)

    def _split_heads(self, x):
        """(B, T, D) -> (B, k, T, D_h)."""
        x = ops.reshape(x, (-1, x.shape[1], self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, tokens, training=None, return_attention_scores=False):
        needs_weights = return_attention_scores or (training and self.attention_dropout_rate > 0)
        if self.fused and not needs_weights and has_attention_kernel():
            return self._fused_call(tokens)
        q, k, v = (self._split_heads(f(tokens)) for f in (self.query, self.key, self.value))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.head_dim)
        weights = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), v.dtype)
        heads = ops.matmul(self.attention_dropout(weights, training=training), v)  # (B, k, T, D_h)
        heads = ops.transpose(heads, (0, 2, 1, 3))
        outputs = self.output_projection(ops.reshape(heads, (-1, tokens.shape[1], self.hidden_dim)))
        return (outputs, weights) if return_attention_scores else outputs

    def _fused_call(self, tokens):
        """The same softmax(q k^T / sqrt(D_h)) v as `call`, on (B, T, k, D_h) heads."""
        q, k, v = (ops.reshape(f(tokens), (-1, tokens.shape[1], self.num_heads, self.head_dim))
                   for f in (self.query, self.key, self.value))
        heads = ops.dot_product_attention(q, k, v, scale=1 / math.sqrt(self.head_dim))
        return self.output_projection(ops.reshape(heads, (-1, tokens.shape[1], self.hidden_dim)))

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "attention_dropout_rate": self.attention_dropout_rate,
            "fused": self.fused,
        }


@keras.saving.register_keras_serializable(package="vit_tf")
class MlpBlock(layers.Layer):
    """MLP of eq. 3: Dense(M) -> GELU -> Dropout -> Dense(D) -> Dropout.

    (B, T, D) -> (B, T, D). GELU uses the tanh approximation, as Flax's `nn.gelu` does in the authors'
    code; `approximate_gelu=False` is the exact erf form, as PyTorch's `nn.GELU` in timm's ViTs.
    """

    def __init__(self, hidden_dim, mlp_dim, dropout_rate=0.0, approximate_gelu=True, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.mlp_dim = mlp_dim
        self.dropout_rate = dropout_rate
        self.approximate_gelu = approximate_gelu
        bias_init = keras.initializers.RandomNormal(stddev=1e-6)
        policy = self.dtype_policy
        self.dense_in = layers.Dense(mlp_dim, bias_initializer=bias_init, dtype=policy, name="dense_in")
        self.dense_out = layers.Dense(hidden_dim, bias_initializer=bias_init, dtype=policy, name="dense_out")
        self.dropout = layers.Dropout(dropout_rate, dtype=policy)

    def build(self, input_shape):
        self.dense_in.build(input_shape)
        self.dense_out.build((*input_shape[:-1], self.mlp_dim))

    def call(self, tokens, training=None):
        x = keras.activations.gelu(self.dense_in(tokens), approximate=self.approximate_gelu)
        x = self.dropout(x, training=training)
        return self.dropout(self.dense_out(x), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "mlp_dim": self.mlp_dim,
            "dropout_rate": self.dropout_rate,
            "approximate_gelu": self.approximate_gelu,
        }


@keras.saving.register_keras_serializable(package="vit_tf")
class EncoderBlock(layers.Layer):
    """One pre-LayerNorm Transformer encoder block: eqs. 2 and 3.

    (B, T, D) -> (B, T, D), and the block's attention weights (B, k, T, T) on request.
    Dropout follows the attention output projection and both MLP layers (appendix B.1).

    Departure from the paper (DeiT's regulariser for training on less data): stochastic depth
    skips each residual branch of a training example with probability `drop_path_rate`; it is
    Keras' Dropout with one mask value per example (noise shape (B, 1, 1)), rescaled by 1/(1 - rate).
    """

    def __init__(
        self, hidden_dim, num_heads, mlp_dim, dropout_rate=0.0, attention_dropout_rate=0.0, drop_path_rate=0.0,
        fused_attention=True, approximate_gelu=True, **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.drop_path_rate = drop_path_rate
        self.fused_attention = fused_attention
        self.approximate_gelu = approximate_gelu
        policy = self.dtype_policy  # sublayers follow the block's, also when a saved model loads under another
        self.attention_norm = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, dtype=policy, name="attention_norm")
        self.attention = MultiHeadSelfAttention(
            hidden_dim, num_heads, attention_dropout_rate, fused_attention, dtype=policy, name="attention"
        )
        self.attention_output_dropout = layers.Dropout(dropout_rate, dtype=policy)
        self.mlp_norm = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, dtype=policy, name="mlp_norm")
        self.mlp = MlpBlock(hidden_dim, mlp_dim, dropout_rate, approximate_gelu, dtype=policy, name="mlp")
        self.attention_drop_path, self.mlp_drop_path = (
            layers.Dropout(drop_path_rate, noise_shape=(None, 1, 1), dtype=policy) for _ in range(2)
        )

    def build(self, input_shape):
        for sublayer in (self.attention_norm, self.attention, self.mlp_norm, self.mlp):
            sublayer.build(input_shape)

    def call(self, tokens, training=None, return_attention_scores=False):
        attended = self.attention(
            self.attention_norm(tokens), training=training, return_attention_scores=return_attention_scores
        )
        if return_attention_scores:
            attended, weights = attended
        attended = self.attention_output_dropout(attended, training=training)
        tokens = tokens + self.attention_drop_path(attended, training=training)  # eq. 2
        mlp_output = self.mlp(self.mlp_norm(tokens), training=training)
        tokens = tokens + self.mlp_drop_path(mlp_output, training=training)  # eq. 3
        return (tokens, weights) if return_attention_scores else tokens

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "drop_path_rate": self.drop_path_rate,
            "fused_attention": self.fused_attention,
            "approximate_gelu": self.approximate_gelu,
        }


@keras.saving.register_keras_serializable(package="vit_tf")
class TokenPooling(layers.Layer):
    """Eq. 4 readout: the class token z_L^0, the mean of all tokens ("gap", appendix D.3), or DeiT's
    distillation token z_L^1 ("distillation").

    (B, T, D) -> (B, D). Applied after the final LayerNorm (`encoder_norm`), as the authors do.
    """

    MODES = ("token", "gap", "distillation")

    def __init__(self, mode="token", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"classifier must be one of {', '.join(self.MODES)}, not {mode!r}")
        self.mode = mode

    def call(self, tokens):
        if self.mode == "gap":
            return ops.mean(tokens, axis=1)
        return tokens[:, 1] if self.mode == "distillation" else tokens[:, 0]

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def fuse_heads(class_logits, distillation_logits):
    """log((softmax(a) + softmax(b)) / 2): a softmax of the result is the average of the two heads'.

    Computed as logaddexp of the two log-softmaxes, which never underflows to log 0.
    """
    both = ops.logaddexp(ops.log_softmax(class_logits, axis=-1), ops.log_softmax(distillation_logits, axis=-1))
    return both - math.log(2.0)


@keras.saving.register_keras_serializable(package="vit_tf")
class HeadFusion(layers.Layer):
    """DeiT at inference: the class head's and the distillation head's softmax outputs averaged.

    (B, K), (B, K) -> (B, K) log-probabilities (`fuse_heads`).
    """

    def call(self, inputs):
        return fuse_heads(*inputs)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
