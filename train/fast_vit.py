"""GPU speed options for timm ViT blocks that keep every parameter, name and checkpoint.

    apply_speedups(encoder, bf16_residual=True, split_qkv=True)   # in place; returns it

- **bf16 residual stream** (`bf16_residual`): under bf16 autocast, timm's residual stream
  stays fp32 (the patch embedding's fp32 output plus each block's bf16 branch promotes to
  fp32), so every LayerNorm reads, and every residual add reads and writes, 4 bytes per
  element, and each branch input is cast again. Casting the tokens to the autocast dtype
  once, before the blocks (`norm_pre`), halves that traffic; LayerNorm still computes in
  fp32 under autocast. Megatron-LM trains this way by default (`fp32_residual_connection`
  off). Outside autocast (CPU fp32 training) it does nothing.
- **Split q/k/v projections** (`split_qkv`): timm projects q, k and v with one [3D, D]
  matmul and permutes the result to [3, N, H, L, Dh]; the backward then stacks dq, dk, dv
  and copies them back to [N, L, 3D] (a read and a write of three activations per block).
  Three matmuls with the row blocks of the same `qkv.weight` give q, k, v whose
  [N, L, H, Dh] -> [N, H, L, Dh] transposes are views, and whose gradients reach
  `qkv.weight` through the slices, with no stack. Same parameters, same outputs (to
  rounding).

Both change only the modules' classes or `norm_pre`, never parameters or buffers, so
state dicts, safetensors files and `timm.create_model` loading are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Attention


class AutocastResidual(torch.nn.Module):
    """`norm_pre` that casts the tokens [N, L, D] to the autocast dtype when autocast is on
    for their device, and passes them through unchanged otherwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = x.device.type
        if torch.is_autocast_enabled(kind):
            return x.to(torch.get_autocast_dtype(kind))
        return x


class SplitQkvAttention(Attention):
    """timm's `Attention` with q, k, v from three matmuls over `qkv.weight`'s row blocks."""

    def forward(
        self, x: torch.Tensor, attn_mask: Any = None, is_causal: bool = False
    ) -> torch.Tensor:
        """[N, L, D] -> [N, L, D]; timm's own forward for the features this path lacks."""
        plain = self.gate is None and self.fused_attn and attn_mask is None and not is_causal
        if not plain or not isinstance(self.q_norm, torch.nn.Identity):
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)
        n, length, _ = x.shape
        width = self.num_heads * self.head_dim
        weight, bias = self.qkv.weight, self.qkv.bias

        def heads(i: int) -> torch.Tensor:  # [N, L, width] -> [N, H, L, Dh], a view
            b = None if bias is None else bias[i * width : (i + 1) * width]
            out = F.linear(x, weight[i * width : (i + 1) * width], b)
            return out.view(n, length, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(0), heads(1), heads(2)
        dropout = self.attn_drop.p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        out = self.norm(out.transpose(1, 2).reshape(n, length, width))
        return self.proj_drop(self.proj(out))


def apply_speedups(model: Any, *, bf16_residual: bool = False, split_qkv: bool = False) -> Any:
    """Turn the options on in every timm ViT (or its Attention blocks) inside `model`."""
    for module in model.modules():
        if bf16_residual and isinstance(getattr(module, "norm_pre", None), torch.nn.Identity):
            module.norm_pre = AutocastResidual()
        if split_qkv and type(module) is Attention:
            module.__class__ = SplitQkvAttention
    return model
