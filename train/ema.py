"""Exponential moving average of a model's weights (Polyak averaging), for WSP's `--ema`.

    ema = ModelEma(model, decay=0.9999)   # a copy of every floating-point weight and buffer
    ...; optimizer.step(); ema.update()   # ema = decay * ema + (1 - decay) * weights

The average lives beside the model in fp32, keyed like `model.state_dict()`, and goes into
the run's state file, so a resumed run continues the same average. `export --ema` writes it
as the model's weights. Not supported under FSDP (the weights are sharded).
"""

from __future__ import annotations

from typing import Any


class ModelEma:
    def __init__(self, model: Any, decay: float) -> None:
        import torch

        self.model = model
        self.decay = decay
        with torch.no_grad():
            self.shadow = {k: v.detach().float().clone() for k, v in self._live().items()}

    def _live(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}

    def update(self) -> None:
        import torch

        with torch.no_grad():
            live = self._live()
            shadow = [self.shadow[k] for k in live]
            torch._foreach_lerp_(shadow, [v.float() for v in live.values()], 1 - self.decay)

    def state_dict(self) -> dict[str, Any]:
        return {k: v.cpu() for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            self.shadow[key].copy_(value)
