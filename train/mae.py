"""Masked autoencoder (He et al. 2022) around a timm ViT encoder, as MAWS pre-pretrains it.

    mae = MaskedAutoencoder(create_encoder("vit_tiny_patch4", 32))
    loss, pred, mask = mae(images, mask_ratio=0.75)

- Position embeddings are fixed 2D sin-cos (encoder and decoder), not learnt.
- The encoder sees only the visible patches (25% by default): a per-sample random subset
  chosen by sorting uniform noise.
- A light decoder (default 8 blocks x 512 wide x 16 heads; smaller for CPU runs) fills in
  mask tokens and predicts every patch's pixels.
- Loss: mean squared error on the per-patch normalised pixels (norm-pix), masked patches
  only.

Checkpoint layout (`checkpoint_state`): the encoder's own timm keys at the top level
(`cls_token`, `pos_embed`, `patch_embed.*`, `blocks.*`, `norm.*`), so the file loads into
`timm`'s VisionTransformer after dropping the `decoder.*` keys.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

DECODER_PREFIX = "decoder."


def sincos_pos_embed(embed_dim: int, grid_size: int, cls_token: bool = True) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding: [1 + grid_size**2 (cls first, zero), embed_dim].

    Half the channels encode the row, half the column; each half is sin and cos of the
    position at `embed_dim / 4` geometric frequencies (as in MAE / MoCo v3).
    """
    if embed_dim % 4:
        raise ValueError(f"sin-cos position embedding needs embed_dim % 4 == 0, got {embed_dim}")
    coords = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")  # [G, G] each
    omega = 1.0 / 10000 ** (torch.arange(embed_dim // 4, dtype=torch.float64) / (embed_dim / 4))

    def encode(pos: torch.Tensor) -> torch.Tensor:  # [G*G] -> [G*G, D/2]
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    emb = torch.cat([encode(cols), encode(rows)], dim=1)  # [G*G, D], width half first
    if cls_token:
        emb = torch.cat([torch.zeros(1, embed_dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()


class MaeDecoder(nn.Module):
    """Visible tokens [N, 1 + L_vis, D] + restore order -> pixels per patch [N, L, p*p*3]."""

    def __init__(
        self, num_patches: int, encoder_dim: int, patch_pixels: int, dim: int, depth: int,
        heads: int,
    ) -> None:  # fmt: skip
        from timm.models.vision_transformer import Block

        super().__init__()
        grid = int(round(num_patches**0.5))
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(sincos_pos_embed(dim, grid)[None], requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, patch_pixels)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent: [N, 1 + L_vis, D_enc]; ids_restore: [N, L] -> pred [N, L, p*p*3]."""
        x = self.embed(latent)  # [N, 1 + L_vis, D_dec]
        n, length = ids_restore.shape
        masked = self.mask_token.expand(n, length + 1 - x.shape[1], -1)
        patches = torch.cat([x[:, 1:], masked], dim=1)  # [N, L, D_dec], shuffled order
        index = ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2])
        patches = torch.gather(patches, 1, index)  # back to raster order
        x = torch.cat([x[:, :1], patches], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))[:, 1:]  # drop cls: [N, L, p*p*3]


class MaskedAutoencoder(nn.Module):
    """MAE with a timm `VisionTransformer` encoder (its head, if any, is unused)."""

    def __init__(
        self,
        encoder: Any,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        norm_pix_loss: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.patch_size = encoder.patch_embed.patch_size[0]
        grid = encoder.patch_embed.grid_size[0]
        num_patches = encoder.patch_embed.num_patches
        # fixed, not learnt: MAE's sin-cos grid in the encoder's (timm) pos_embed slot
        with torch.no_grad():
            encoder.pos_embed.copy_(sincos_pos_embed(encoder.embed_dim, grid)[None])
        encoder.pos_embed.requires_grad_(False)
        self.decoder = MaeDecoder(
            num_patches, encoder.embed_dim, self.patch_size**2 * 3, decoder_dim, decoder_depth,
            decoder_heads,
        )  # fmt: skip
        self.norm_pix_loss = norm_pix_loss
        self.decoder.apply(_init_linear)
        # MAE initialises the patch projection like a linear layer over the flattened patch
        w = encoder.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.data.view(w.shape[0], -1))

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: [N, 3, H, W] -> [N, L, p*p*3], patches in raster order, pixels (p, p, c)."""
        p = self.patch_size
        n, c, h, w = imgs.shape
        x = imgs.reshape(n, c, h // p, p, w // p, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(n, (h // p) * (w // p), p * p * c)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, L, p*p*3] -> imgs [N, 3, H, W] (square grid)."""
        p = self.patch_size
        n, length, _ = x.shape
        g = int(round(length**0.5))
        x = x.reshape(n, g, g, p, p, 3)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(n, 3, g * p, g * p)

    @staticmethod
    def random_masking(
        x: torch.Tensor, mask_ratio: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep a random subset of patches per sample.

        x: [N, L, D] -> (kept [N, L_keep, D], mask [N, L] with 1 = removed,
        ids_restore [N, L]); L_keep = int(L * (1 - mask_ratio)), the same for every sample.
        """
        n, length, dim = x.shape
        keep = int(length * (1 - mask_ratio))
        noise = torch.rand(n, length, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)  # ascend: small is keep, large is remove
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
        mask = torch.ones(n, length, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)  # back to raster order
        return kept, mask, ids_restore

    def forward_encoder(
        self, imgs: torch.Tensor, mask_ratio: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """imgs [N, 3, H, W] -> (latent [N, 1 + L_keep, D], mask [N, L], ids_restore [N, L])."""
        enc = self.encoder
        x = enc.patch_embed(imgs) + enc.pos_embed[:, 1:]  # [N, L, D]
        x, mask, ids_restore = self.random_masking(x, mask_ratio)
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        x = enc.blocks(enc.norm_pre(x))
        return enc.norm(x), mask, ids_restore

    def loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error per patch, averaged over the masked patches only.

        imgs [N, 3, H, W]; pred [N, L, p*p*3]; mask [N, L] (1 = removed) -> scalar.
        """
        target = self.patchify(imgs)
        if self.norm_pix_loss:  # each patch normalised by its own mean and variance
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        per_patch = ((pred.float() - target) ** 2).mean(dim=-1)  # [N, L]
        return (per_patch * mask).sum() / mask.sum()

    def forward(
        self, imgs: torch.Tensor, mask_ratio: float = 0.75
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """imgs [N, 3, H, W] -> (loss scalar, pred [N, L, p*p*3], mask [N, L], 1 = removed)."""
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio)
        pred = self.decoder(latent, ids_restore)
        return self.loss(imgs, pred, mask), pred, mask

    def reconstruct(self, imgs: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Undo the norm-pix target: pred [N, L, p*p*3] -> images [N, 3, H, W] in input units."""
        if not self.norm_pix_loss:
            return self.unpatchify(pred)
        target = self.patchify(imgs)
        mean = target.mean(dim=-1, keepdim=True)
        std = (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5
        return self.unpatchify(pred * std + mean)

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """Encoder keys as timm names them, decoder keys under `decoder.`."""
        state = dict(self.encoder.state_dict())
        for key, value in self.decoder.state_dict().items():
            state[DECODER_PREFIX + key] = value
        return state


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
